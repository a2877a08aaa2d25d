"""Llama decoder as an ONNX graph (opset 17), built with the `onnx` helpers only.

Signature (HF/optimum decoder convention, but fed embeddings):
  inputs : inputs_embeds f32 [batch, seq, hidden], attention_mask i64 [batch, total],
           position_ids i64 [batch, seq], past_key_values.{i}.key/.value f32 [batch, kv_heads, past, head_dim]
  outputs: logits f32 [batch, seq, vocab], present.{i}.key/.value f32 [batch, kv_heads, total, head_dim]
with total = past + seq.

Shapes follow what tract's transformer rewrites look for (tract-transformers 0.23):
- present = Concat(past, new, axis=2) with the past input feeding nothing else (detect_kv_cache);
- rope = Add(Mul(x, cos), Mul(Concat(Neg(Slice(x, h:d)), Slice(x, 0:h)), sin)) (detect_apply_rope);
- Softmax(Add(Mul(scores, const_scale), mask)) (detect_scaled_masked_softmax);
- Range gets rank-0 inputs; lm_head is its own [hidden, vocab] initializer, not the embedding.
Weights are expected in HF layout ([out, in], Q/K rows in HF half-split RoPE order); "embed" is
the [vocab, hidden] table stored for the runtime, "lm_head" the [vocab, hidden] output matrix.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the IR of the opset-17 era: keeps older runtimes (ORT-web, tract) happy

INPUT_NAMES = ["inputs_embeds", "attention_mask", "position_ids"]


def kv_names(n_layers, prefix):
    return [f"{prefix}.{i}.{kv}" for i in range(n_layers) for kv in ("key", "value")]


class Graph:
    def __init__(self, dtype):
        self.dtype = dtype  # storage type of the weight matrices: "f32" or "f16"
        self.nodes, self.inits, self._n = [], [], 0

    def const(self, name, value):
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type, inputs, out=None, **attrs):
        self._n += 1
        name = f"/{op_type}_{self._n}"
        out = out or f"{name}_out"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=name, **attrs))
        return out

    def matrix(self, name, w):
        """A weight matrix: f16 storage + Cast so runtimes still compute in f32."""
        w = np.ascontiguousarray(w, dtype=np.float32)
        if self.dtype == "f32":
            return self.const(name, w)
        self.const(name, w.astype(np.float16))
        return self.op("Cast", [name], out=name + ".f32", to=TensorProto.FLOAT)


def build(cfg, weights, dtype="f16"):
    """cfg: dict of dims; weights: dict of float32 arrays in HF layout. Returns onnx.ModelProto."""
    L, H, nh, nkv, hd, V = (cfg[k] for k in ("num_layers", "hidden_size", "num_attention_heads",
                                             "num_key_value_heads", "head_dim", "vocab_size"))
    assert nh * hd == H and nh % nkv == 0
    g = Graph(dtype)
    f32 = TensorProto.FLOAT
    i64 = lambda *v: np.array(v, dtype=np.int64)

    # The runtime embeds ids itself from this table; the graph never reads it.
    g.const("model.embed_tokens.weight",
            weights["embed"].astype(np.float16 if dtype == "f16" else np.float32))

    # ---- shared: causal+padding mask, RoPE tables ----
    total = g.op("Gather", [g.op("Shape", ["attention_mask"]), g.const("c.one_s", np.int64(1))], axis=0)
    kpos = g.op("Range", [g.const("c.zero_s", np.int64(0)), total, "c.one_s"])        # [T]
    qpos = g.op("Unsqueeze", ["position_ids", g.const("c.ax2", i64(2))])               # [B,S,1]
    causal = g.op("LessOrEqual", [kpos, qpos])                                         # [B,S,T]
    keep = g.op("Not", [g.op("Equal", ["attention_mask", g.const("c.zero_i", np.int64(0))])])
    visible = g.op("And", [causal, g.op("Unsqueeze", [keep, g.const("c.ax1", i64(1))])])
    # finfo.min rather than -inf: a fully masked row gives a uniform softmax, not NaN.
    bias = g.op("Where", [visible, g.const("c.zero_f", np.float32(0)),
                          g.const("c.neg_big", np.float32(np.finfo(np.float32).min))])
    bias = g.op("Unsqueeze", [bias, "c.ax1"])                                          # [B,1,S,T]

    # Python's scalar pow (libm), not numpy's SIMD one, so the bytes do not depend on the CPU.
    inv_freq = np.array([1.0 / cfg["rope_theta"] ** (2 * i / hd) for i in range(hd // 2)])
    posf = g.op("Unsqueeze", [g.op("Cast", ["position_ids"], to=f32), "c.ax2"])         # [B,S,1]
    freqs = g.op("Mul", [posf, g.const("rope.inv_freq", inv_freq.astype(np.float32))])  # [B,S,hd/2]
    emb = g.op("Concat", [freqs, freqs], axis=2)                                       # HF layout
    cos = g.op("Unsqueeze", [g.op("Cos", [emb]), "c.ax1"])                             # [B,1,S,hd]
    sin = g.op("Unsqueeze", [g.op("Sin", [emb]), "c.ax1"])

    g.const("c.half_s", i64(hd // 2))
    g.const("c.hd_e", i64(hd))
    g.const("c.zero_v", i64(0))
    g.const("c.ax3", i64(3))
    g.const("c.eps", np.float32(cfg["rms_norm_eps"]))
    g.const("c.scale", np.float32(1.0 / np.sqrt(hd)))
    g.const("c.shape_h", i64(0, 0, H))
    g.const("c.rep", i64(1, 1, nh // nkv, 1, 1))
    g.const("c.shape_rep", i64(0, nh, -1, hd))
    for n in sorted({nh, nkv}):
        g.const(f"c.shape_{n}", i64(0, 0, n, hd))

    def rmsnorm(x, name):
        ms = g.op("ReduceMean", [g.op("Mul", [x, x])], axes=[-1], keepdims=1)
        y = g.op("Div", [x, g.op("Sqrt", [g.op("Add", [ms, "c.eps"])])])
        return g.op("Mul", [y, g.const(name, weights[name].astype(np.float32))])  # norms stay f32

    def heads(x, w, n):  # [B,S,H] @ w -> [B,n,S,hd]
        y = g.op("Reshape", [g.op("MatMul", [x, w]), f"c.shape_{n}"])
        return g.op("Transpose", [y], perm=[0, 2, 1, 3])

    def rope(x):  # HF rotate_half form
        x1 = g.op("Slice", [x, "c.zero_v", "c.half_s", "c.ax3"])
        x2 = g.op("Slice", [x, "c.half_s", "c.hd_e", "c.ax3"])
        rot = g.op("Concat", [g.op("Neg", [x2]), x1], axis=3)
        return g.op("Add", [g.op("Mul", [x, cos]), g.op("Mul", [rot, sin])])

    def repeat_kv(x):  # HF repeat_kv: query head h reads kv head h // n_rep
        if nh == nkv:
            return x
        x = g.op("Unsqueeze", [x, "c.ax2"])                                         # [B,kv,1,T,hd]
        x = g.op("Expand", [x, "c.rep"])                                              # [B,kv,r,T,hd]
        return g.op("Reshape", [x, "c.shape_rep"])                                    # [B,nh,T,hd]

    x = "inputs_embeds"
    for i in range(L):
        p = f"model.layers.{i}"
        h = rmsnorm(x, f"{p}.input_layernorm.weight")
        q = rope(heads(h, g.matrix(f"{p}.self_attn.q_proj.weight_t", weights[f"{p}.q"].T), nh))
        k = rope(heads(h, g.matrix(f"{p}.self_attn.k_proj.weight_t", weights[f"{p}.k"].T), nkv))
        v = heads(h, g.matrix(f"{p}.self_attn.v_proj.weight_t", weights[f"{p}.v"].T), nkv)
        k = g.op("Concat", [f"past_key_values.{i}.key", k], out=f"present.{i}.key", axis=2)
        v = g.op("Concat", [f"past_key_values.{i}.value", v], out=f"present.{i}.value", axis=2)
        kt = g.op("Transpose", [repeat_kv(k)], perm=[0, 1, 3, 2])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, kt]), "c.scale"]), bias])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=3), repeat_kv(v)])      # [B,nh,S,hd]
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]),
                               "c.shape_h"])
        x = g.op("Add", [x, g.op("MatMul", [ctx, g.matrix(f"{p}.self_attn.o_proj.weight_t",
                                                          weights[f"{p}.o"].T)])])
        h = rmsnorm(x, f"{p}.post_attention_layernorm.weight")
        gate = g.op("MatMul", [h, g.matrix(f"{p}.mlp.gate_proj.weight_t", weights[f"{p}.gate"].T)])
        up = g.op("MatMul", [h, g.matrix(f"{p}.mlp.up_proj.weight_t", weights[f"{p}.up"].T)])
        act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), up])          # SiLU(gate)*up
        x = g.op("Add", [x, g.op("MatMul", [act, g.matrix(f"{p}.mlp.down_proj.weight_t",
                                                          weights[f"{p}.down"].T)])])
    h = rmsnorm(x, "model.norm.weight")
    # Own transposed copy of the (tied) embedding (see module docstring), always float32:
    # tract folds Cast(f16 const) only while the f32 result stays under its 4 MiB const-fold
    # budget (or the f16 input size); the 113 MB lm_head would be cast and repacked every step
    # (decode 3 tok/s instead of 15). The per-layer matrices (<= 3.5 MB as f32) do fold.
    lm_head = np.ascontiguousarray(weights["lm_head"].T, dtype=np.float32)
    g.op("MatMul", [h, g.const("lm_head.weight_t", lm_head)], out="logits")

    inputs = [
        helper.make_tensor_value_info("inputs_embeds", f32, ["batch_size", "sequence_length", H]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64,
                                      ["batch_size", "total_sequence_length"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64,
                                      ["batch_size", "sequence_length"]),
    ] + [helper.make_tensor_value_info(n, f32, ["batch_size", nkv, "past_sequence_length", hd])
         for n in kv_names(L, "past_key_values")]
    outputs = [helper.make_tensor_value_info("logits", f32, ["batch_size", "sequence_length", V])] \
        + [helper.make_tensor_value_info(n, f32, ["batch_size", nkv, "total_sequence_length", hd])
           for n in kv_names(L, "present")]
    graph = helper.make_graph(g.nodes, "llama_decoder", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="models/build_model.py")
    return model


def signature(cfg):
    L = cfg["num_layers"]
    return {"opset": OPSET,
            "inputs": INPUT_NAMES + kv_names(L, "past_key_values"),
            "outputs": ["logits"] + kv_names(L, "present"),
            "embed_tokens_initializer": "model.embed_tokens.weight",
            "lm_head_initializer": "lm_head.weight_t"}
