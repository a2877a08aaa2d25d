"""Writing GGUFs as SmolLM2's is written (metadata keys, their order and types, tensor order,
weight types), reading them back, and the per-tensor entries of a gguf_reference.json."""
import hashlib
import sys

import numpy as np

from common import f32_value
from smollm2_source import read_gguf


def gguf_tensor_order(n_layers):
    """The tensor order of SmolLM2's GGUF (llama.cpp's): token_embd, per block attn_norm,
    ffn_down, ffn_gate, ffn_up, ffn_norm, attn_k, attn_output, attn_q, attn_v; output_norm."""
    names = ["token_embd.weight"]
    for i in range(n_layers):
        names += [f"blk.{i}.{n}.weight" for n in ("attn_norm", "ffn_down", "ffn_gate", "ffn_up",
                                                   "ffn_norm", "attn_k", "attn_output", "attn_q",
                                                   "attn_v")]
    return names + ["output_norm.weight"]


def add_tokenizer(w, tok):
    """SmolLM2's tokenizer keys, in its order: byte-level BPE ("gpt2", pre "smollm")."""
    w.add_add_space_prefix(False)
    w.add_add_bos_token(tok["add_bos"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tok["tokens"])
    special = set(tok["special_ids"])
    w.add_token_types([3 if i in special else 1 for i in range(len(tok["tokens"]))])
    w.add_token_merges([f"{a} {b}" for a, b in tok["merges"]])
    w.add_bos_token_id(tok["bos"])
    w.add_eos_token_id(tok["eos"])
    w.add_unk_token_id(0)
    w.add_pad_token_id(tok["pad"])
    w.add_chat_template(tok["chat_template"])


def add_dimensions(w, cfg):
    """The `{arch}.*` dimension keys every architecture shares, in the order the GGUFs have them."""
    w.add_block_count(cfg["num_layers"])
    w.add_context_length(cfg["context_length"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])


def write_gguf(path, cfg, gw, tok, general, all_f32=False):
    """A GGUF with SmolLM2's metadata key set, key order and value types, and its weight types:
    token_embd Q8_0, the other matrices Q4_1, norms F32 (quantised with gguf.quants); with
    all_f32, every tensor F32 (an input for llama.cpp's quantiser, llama_quants.py)."""
    import gguf
    Q = gguf.GGMLQuantizationType
    w = gguf.GGUFWriter(str(path), "llama")  # general.architecture comes first
    w.add_type("model")
    w.add_name(general["name"])
    w.add_organization(general["organization"])
    w.add_finetune(general["finetune"])
    w.add_basename(general["basename"])
    w.add_size_label(general["size_label"])
    w.add_license("apache-2.0")
    w.add_languages(["en"])
    add_dimensions(w, cfg)
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if all_f32 else gguf.LlamaFileType.MOSTLY_Q4_1)
    w.add_vocab_size(cfg["vocab_size"])
    w.add_rope_dimension_count(cfg["head_dim"])
    add_tokenizer(w, tok)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for name in gguf_tensor_order(cfg["num_layers"]):
        t = gw[name]
        qtype = Q.F32 if t.ndim == 1 or all_f32 else Q.Q8_0 if name == "token_embd.weight" else Q.Q4_1
        w.add_tensor(name, gguf.quants.quantize(t, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def f32_le(a):
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def gguf_tensor_entries(r, dequantise=lambda name: True):
    """Per tensor, in file order: type, dims (ggml order), offset in the data section, bytes,
    sha256 of the raw bytes and, where `dequantise(name)`, of the gguf-py dequantised float32
    little-endian values (row-major: ggml rows one after the other) plus the first 8 values."""
    import gguf
    out = []
    for t in sorted(r.tensors, key=lambda t: t.data_offset):
        e = dict(name=t.name, ggml_type=t.tensor_type.name, dims=[int(d) for d in t.shape],
                 offset=int(t.data_offset - r.data_offset), n_bytes=int(t.n_bytes),
                 raw_sha256=hashlib.sha256(np.ascontiguousarray(t.data).tobytes()).hexdigest())
        if dequantise(t.name):
            d = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
            e["dequantized_sha256"] = hashlib.sha256(f32_le(d)).hexdigest()
            e["first_values"] = [f32_value(v) for v in d.reshape(-1)[:8]]
        out.append(e)
    return out


def check_gguf_roundtrip(path, cfg, tok):
    """The written GGUF reads back through read_gguf (the smollm2 path) with the same config
    and tokenizer."""
    cfg2, gw, tok2, _ = read_gguf(path)
    if cfg2 != cfg:
        sys.exit(f"FATAL: {path} reads back as {cfg2}, expected {cfg}")
    for k in ("tokens", "special_ids", "bos", "eos", "pad", "add_bos", "chat_template"):
        if tok2[k] != tok[k]:
            sys.exit(f"FATAL: {path} tokenizer field {k} does not read back")
    if [tuple(m) for m in tok2["merges"]] != [tuple(m) for m in tok["merges"]]:
        sys.exit(f"FATAL: {path} merges do not read back")
    return gw
