#!/usr/bin/env python3
"""Writes the tiny model in the layouts the ecosystem exports (optimum, transformers.js), with the
`onnx` package, next to it in models/tiny/variants/, each with the logits ONNX Runtime gives on
that same file (reference.json), which crate/tests/native/onnx_variants.rs compares with tract's:

  input-ids/     `input_ids` in, the embedding Gather inside the graph (optimum's layout), fp32
  external-data/ the same, its weights in model.onnx_data (onnx's save_as_external_data)
  int8/          the same, quantised by onnxruntime.quantization.quantize_dynamic
                 (MatMulInteger + DynamicQuantizeLinear; the embedding an int8 Gather + DequantizeLinear)
  fp16/          the same in float16 (onnxruntime.transformers.float16, f32 inputs and outputs kept)
  positions-from-mask/ the same without position_ids, counted from the attention mask instead
                 (CumSum - 1, the last S), as some exports do (refused, clearly: tract's KV cache
                 rewrite cannot follow it)
  positions-from-past/ the same without position_ids: the graph counts positions from the cache's
                 length, Range(past, past + S), as transformers does when none is given
  ids-shape/     the same with optimum's other readers of input_ids: Shape(input_ids) gives the
                 batch and sequence sizes that expand the attention bias and reshape the logits
  merged/        optimum's merged decoder: a `use_cache_branch` input choosing, by an If, between
                 the decoder with its past and without (here both are the same graph)
  q4/            the same, its MatMuls 4-bit by onnxruntime's MatMulNBitsQuantizer (block 32,
                 symmetric)
  q4-embedding/  the same with the embedding 4-bit too, as the quantiser writes it when asked to
                 quantise the Gather (GatherBlockQuantized, int4 data)
  embedding-uint4/ the embedding alone 4-bit, asymmetric (GatherBlockQuantized, uint4 data and
                 zero points; the MatMuls stay f32: tract's MatMulNBits takes no zero points)
  embedding-uint8/ that embedding in the older packing, two 4-bit values a uint8 (bits=4)

  models/.venv/bin/python models/onnx_variants.py   (models/build.sh tiny runs it)

With --smollm2 it writes SmolLM2's ONNX export (models/smollm2-135m/model.onnx, from the same
GGUF weights) in the input_ids layout with its weights in external data, to
models/smollm2-135m/optimum/ (git-ignored; models/build.sh smollm2 runs it), for
crate/tests/native/model_smollm2.rs: its greedy ids must be the default layout's.

With --smollm2-quantised it writes SmolLM2's f32 export (models/bench/smollm2-f32/, from
tests/bench/browser/prepare.py) in that layout as int8 (quantize_dynamic), fp16, q4
(MatMulNBits) and q4 with a 4-bit embedding (GatherBlockQuantized) into
models/bench/smollm2-{int8,fp16,q4,q4-embedding}/, for tests/bench/onnx_variants.mjs.
"""
import copy
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = Path(__file__).resolve().parent
TINY = HERE / "tiny"
OUT = TINY / "variants"
# The fixtures' prompt (crate/tests/common/tiny.rs), then greedy steps: the reference feeds both
# through the KV cache.
PROMPT = "Once upon a time, there was a little"
STEPS = 3
GATHER_OUTPUT = "/model/embed_tokens/Gather_output_0"


def input_ids_layout(model):
    """Our converter's graph (inputs_embeds in) as optimum writes it: input_ids in, and a Gather on
    the embedding table whose output feeds what inputs_embeds fed."""
    g = model.graph
    embeds = next(i for i in g.input if i.name == "inputs_embeds")
    for node in g.node:
        node.input[:] = [GATHER_OUTPUT if x == "inputs_embeds" else x for x in node.input]
    g.node.insert(0, helper.make_node("Gather", ["model.embed_tokens.weight", "input_ids"], [GATHER_OUTPUT], name="/model/embed_tokens/Gather", axis=0))
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"])
    at = list(g.input).index(embeds)
    g.input.remove(embeds)
    g.input.insert(at, ids)
    onnx.checker.check_model(model)
    return model


def positions_from_mask(model):
    """Drops the position_ids input; the graph computes it: (CumSum(mask) - 1)[:, -S:]."""
    g = model.graph
    g.input.remove(next(i for i in g.input if i.name == "position_ids"))
    c = lambda name, v: g.initializer.append(onnx.numpy_helper.from_array(np.array(v, np.int64), name))
    c("pos.one", 1), c("pos.axis1", 1), c("pos.s_ix", [1]), c("pos.big", [2**62]), c("pos.axes", [1])
    n = lambda op, ins, out, **kw: helper.make_node(op, ins, [out], name=f"/positions/{out}", **kw)
    nodes = [
        n("CumSum", ["attention_mask", "pos.axis1"], "pos.cum"),
        n("Sub", ["pos.cum", "pos.one"], "pos.all"),
        n("Shape", [GATHER_OUTPUT], "pos.embeds_shape"),
        n("Gather", ["pos.embeds_shape", "pos.s_ix"], "pos.s"),
        n("Neg", ["pos.s"], "pos.start"),
        n("Slice", ["pos.all", "pos.start", "pos.big", "pos.axes"], "position_ids"),
    ]
    for i, node in enumerate(nodes):
        g.node.insert(1 + i, node)  # after the embedding Gather
    onnx.checker.check_model(model)
    return model


def ids_shape_readers(model):
    """optimum's graphs read Shape(input_ids) besides the embedding Gather: here one Shape gives
    the batch and sequence sizes that Expand the attention bias to [B, 1, S, T], another the
    [B, S] that Reshape the logits to [B, S, vocab]. Both leave the values as they are."""
    g = model.graph
    c = lambda name, v: g.initializer.append(onnx.numpy_helper.from_array(np.array(v, np.int64), name))
    c("ids.b_ix", [0]), c("ids.s_ix", [1]), c("ids.one", [1]), c("ids.rest", [-1])
    n = lambda op, ins, out, **kw: helper.make_node(op, ins, [out], name=f"/ids_shape/{out}", **kw)
    where = next(x for x in g.node if x.op_type == "Where" and "c.neg_big" in x.input)
    unsqueeze = next(x for x in g.node if x.op_type == "Unsqueeze" and x.input[0] == where.output[0])
    for node in g.node:
        node.input[:] = ["ids.bias" if x == unsqueeze.output[0] else x for x in node.input]
    sizes = [
        n("Shape", ["input_ids"], "ids.shape"),
        n("Gather", ["ids.shape", "ids.b_ix"], "ids.b"),
        n("Gather", ["ids.shape", "ids.s_ix"], "ids.s"),
        n("Shape", ["attention_mask"], "ids.mask_shape"),
        n("Gather", ["ids.mask_shape", "ids.s_ix"], "ids.t"),
        n("Concat", ["ids.b", "ids.one", "ids.s", "ids.t"], "ids.bias_shape", axis=0),
    ]
    at = list(g.node).index(unsqueeze) + 1
    g.node.insert(at, n("Expand", [unsqueeze.output[0], "ids.bias_shape"], "ids.bias"))
    for node in reversed(sizes):
        g.node.insert(1, node)  # after the embedding Gather
    matmul = next(x for x in g.node if "logits" in x.output)
    matmul.output[:] = ["ids.logits"]
    g.node.extend([
        n("Shape", ["input_ids"], "ids.logits_shape"),
        n("Concat", ["ids.logits_shape", "ids.rest"], "ids.logits_dims", axis=0),
        helper.make_node("Reshape", ["ids.logits", "ids.logits_dims"], ["logits"], name="/ids_shape/logits"),
    ])
    onnx.checker.check_model(model)
    return model


def merged_decoder(model):
    """optimum's merged layout: the graph becomes the two branches of an If on use_cache_branch.
    Each branch's values are renamed under its own prefix, as ONNX scoping wants."""
    g = model.graph
    outer_inputs = {i.name for i in g.input} | {t.name for t in g.initializer}

    def branch(prefix):
        nodes = copy.deepcopy(list(g.node))
        rename = lambda x: x if x in outer_inputs or x == "" else f"{prefix}/{x}"
        for node in nodes:
            node.input[:] = [rename(x) for x in node.input]
            node.output[:] = [rename(x) for x in node.output]
            node.name = f"{prefix}/{node.name}"
        outputs = [helper.make_tensor_value_info(rename(o.name), o.type.tensor_type.elem_type, None) for o in g.output]
        return helper.make_graph(nodes, prefix, [], outputs)

    then_branch, else_branch = branch("with_past"), branch("without_past")
    del g.node[:]
    g.node.append(helper.make_node("If", ["use_cache_branch"], [o.name for o in g.output], name="optimum::if", then_branch=then_branch, else_branch=else_branch))
    g.input.append(helper.make_tensor_value_info("use_cache_branch", TensorProto.BOOL, [1]))
    onnx.checker.check_model(model)
    return model


def positions_from_past(model):
    """Drops the position_ids input; the graph computes it as transformers does when none is given:
    Range(past, past + S), past being the cache's length."""
    g = model.graph
    g.input.remove(next(i for i in g.input if i.name == "position_ids"))
    c = lambda name, v: g.initializer.append(onnx.numpy_helper.from_array(np.array(v, np.int64), name))
    c("cp.two", 2), c("cp.one", 1), c("cp.step", 1), c("cp.axis0", [0])
    n = lambda op, ins, out, **kw: helper.make_node(op, ins, [out], name=f"/cache_position/{out}", **kw)
    nodes = [
        n("Shape", ["past_key_values.0.key"], "cp.past_shape"),
        n("Gather", ["cp.past_shape", "cp.two"], "cp.past"),
        n("Shape", [GATHER_OUTPUT], "cp.embeds_shape"),
        n("Gather", ["cp.embeds_shape", "cp.one"], "cp.s"),
        n("Add", ["cp.past", "cp.s"], "cp.end"),
        n("Range", ["cp.past", "cp.end", "cp.step"], "cp.range"),
        n("Unsqueeze", ["cp.range", "cp.axis0"], "position_ids"),
    ]
    for i, node in enumerate(nodes):
        g.node.insert(1 + i, node)
    onnx.checker.check_model(model)
    return model


def q4_quantised(model, op_types, symmetric=True):
    """onnxruntime's MatMulNBitsQuantizer, block 32, on `op_types` (the Gather quantised along
    each row, as transformers.js's 4-bit exports have their embedding)."""
    import logging
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.ERROR)
    if "Gather" in op_types:
        # int4 tensors need opset 21, which the quantiser sets without converting the graph's
        # nodes (ReduceMean's axes became an input in opset 18): convert it first.
        from onnx import version_converter
        model = version_converter.convert_version(model, 21)
    quantizer = MatMulNBitsQuantizer(model, block_size=32, is_symmetric=symmetric, op_types_to_quantize=op_types,
                                     quant_axes=(("MatMul", 0), ("Gather", 1)))
    quantizer.process()
    return quantizer.model.model


def uint8_packed(model):
    """A uint4 GatherBlockQuantized in the uint8 packing (bits=4): the table's bytes as they are,
    each row's zero points in bytes of their own."""
    g = model.graph
    node = next(n for n in g.node if n.op_type == "GatherBlockQuantized")
    tensors = {t.name: t for t in g.initializer}
    data, zero_points = tensors[node.input[0]], tensors[node.input[3]]
    rows, cols = data.dims
    data.data_type, data.dims[:] = TensorProto.UINT8, [rows, cols // 2]
    nibbles = np.frombuffer(zero_points.raw_data, np.uint8)
    nibbles = np.stack([nibbles & 0xF, nibbles >> 4], 1).reshape(rows, -1)
    if nibbles.shape[1] % 2:
        nibbles = np.pad(nibbles, ((0, 0), (0, 1)))
    zero_points.raw_data = (nibbles[:, 0::2] | nibbles[:, 1::2] << 4).astype(np.uint8).tobytes()
    zero_points.data_type, zero_points.dims[:] = TensorProto.UINT8, [rows, nibbles.shape[1] // 2]
    node.attribute.append(helper.make_attribute("bits", 4))
    return model


def reference(path):
    """ONNX Runtime's logits on `path`: the prompt's last position, then each greedy step's."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    cfg = json.loads((TINY / "config.json").read_text())
    layers, heads, dim = cfg["num_layers"], cfg["num_key_value_heads"], cfg["head_dim"]
    past = {f"past_key_values.{i}.{kv}": np.zeros((1, heads, 0, dim), np.float32) for i in range(layers) for kv in ("key", "value")}
    names = [o.name for o in sess.get_outputs()]
    inputs = {i.name for i in sess.get_inputs()}
    from tokenizers import Tokenizer
    prompt_ids = Tokenizer.from_file(str(TINY / "tokenizer.json")).encode(PROMPT).ids
    fed, steps = list(prompt_ids), []
    new = list(prompt_ids)
    for _ in range(STEPS + 1):
        p = next(iter(past.values())).shape[2]
        feeds = {"input_ids": np.array([new], np.int64), "attention_mask": np.ones((1, p + len(new)), np.int64),
                 "position_ids": np.arange(p, p + len(new), dtype=np.int64)[None],
                 "use_cache_branch": np.array([p > 0]), **past}
        feeds = {k: v for k, v in feeds.items() if k in inputs}
        out = dict(zip(names, sess.run(None, feeds)))
        logits = out["logits"][0, -1].astype(np.float64)
        steps.append({"fed": new, "logits": [round(float(x), 6) for x in logits]})
        past = {k: out[k.replace("past_key_values", "present")] for k in past}
        new = [int(logits.argmax())]
        fed += new
    return {"onnxruntime": ort.__version__, "prompt": PROMPT, "ids": fed, "steps": steps}


def write(name, model, external=False):
    folder = OUT / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    path = folder / "model.onnx"
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="model.onnx_data", size_threshold=1024)
    else:
        onnx.save_model(model, str(path))
    return path


def smollm2():
    model = input_ids_layout(onnx.load(str(HERE / "smollm2-135m/model.onnx")))
    folder = HERE / "smollm2-135m/optimum"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    onnx.save_model(model, str(folder / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True, location="model.onnx_data", size_threshold=1024)
    print(f"{folder}: {sum(f.stat().st_size for f in folder.iterdir())} bytes", file=sys.stderr)


def smollm2_quantised():
    """SmolLM2 as the quantised variants transformers.js ships, from its f32 export (the f16
    default keeps its weights behind Casts, which the quantisers do not follow)."""
    out = HERE / "bench"
    f32 = out / "smollm2-f32/model.onnx"
    if not f32.exists():
        sys.exit(f"{f32} is missing: tests/bench/browser/prepare.py writes it")
    source = out / "smollm2-optimum-f32.onnx"
    onnx.save_model(input_ids_layout(onnx.load(str(f32))), str(source))
    for name in ("int8", "fp16", "q4", "q4-embedding"):
        shutil.rmtree(out / f"smollm2-{name}", ignore_errors=True)
        (out / f"smollm2-{name}").mkdir(parents=True)
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(str(source), str(out / "smollm2-int8/model.onnx"), weight_type=QuantType.QInt8)
    from onnxruntime.transformers.float16 import convert_float_to_float16
    onnx.save_model(convert_float_to_float16(onnx.load(str(source)), keep_io_types=True), str(out / "smollm2-fp16/model.onnx"))
    onnx.save_model(q4_quantised(onnx.load(str(source)), ("MatMul",)), str(out / "smollm2-q4/model.onnx"))
    onnx.save_model(q4_quantised(onnx.load(str(source)), ("MatMul", "Gather")), str(out / "smollm2-q4-embedding/model.onnx"))
    for name in ("int8", "fp16", "q4", "q4-embedding"):
        folder = out / f"smollm2-{name}"
        for config in ("tokenizer.json", "config.json"):
            shutil.copy(HERE / "smollm2-135m" / config, folder / config)
        print(f"{folder}: {(folder / 'model.onnx').stat().st_size} bytes", file=sys.stderr)
    source.unlink()


def main():
    if sys.argv[1:] == ["--smollm2"]:
        return smollm2()
    if sys.argv[1:] == ["--smollm2-quantised"]:
        return smollm2_quantised()
    base = input_ids_layout(onnx.load(str(TINY / "model.onnx")))
    paths = {"input-ids": write("input-ids", base)}
    # save_as_external_data moves the tensors' bytes out of `base`: write it last, or reload.
    paths["external-data"] = write("external-data", input_ids_layout(onnx.load(str(TINY / "model.onnx"))), external=True)
    from onnxruntime.quantization import QuantType, quantize_dynamic
    int8 = OUT / "int8"
    shutil.rmtree(int8, ignore_errors=True)
    int8.mkdir(parents=True)
    # Its default op types, as a "quantized" (q8) export has them: the MatMuls and the embedding Gather.
    quantize_dynamic(str(paths["input-ids"]), str(int8 / "model.onnx"), weight_type=QuantType.QInt8)
    paths["int8"] = int8 / "model.onnx"
    from onnxruntime.transformers.float16 import convert_float_to_float16
    paths["fp16"] = write("fp16", convert_float_to_float16(input_ids_layout(onnx.load(str(TINY / "model.onnx"))), keep_io_types=True))
    paths["positions-from-mask"] = write("positions-from-mask", positions_from_mask(input_ids_layout(onnx.load(str(TINY / "model.onnx")))))
    paths["positions-from-past"] = write("positions-from-past", positions_from_past(input_ids_layout(onnx.load(str(TINY / "model.onnx")))))
    paths["ids-shape"] = write("ids-shape", ids_shape_readers(input_ids_layout(onnx.load(str(TINY / "model.onnx")))))
    paths["merged"] = write("merged", merged_decoder(input_ids_layout(onnx.load(str(TINY / "model.onnx")))))
    fresh = lambda: input_ids_layout(onnx.load(str(TINY / "model.onnx")))
    paths["q4"] = write("q4", q4_quantised(fresh(), ("MatMul",)))
    paths["q4-embedding"] = write("q4-embedding", q4_quantised(fresh(), ("MatMul", "Gather")))
    paths["embedding-uint4"] = write("embedding-uint4", q4_quantised(fresh(), ("Gather",), symmetric=False))
    paths["embedding-uint8"] = write("embedding-uint8", uint8_packed(q4_quantised(fresh(), ("Gather",), symmetric=False)))
    for name, path in paths.items():
        ref = reference(path)
        (path.parent / "reference.json").write_text(json.dumps(ref, separators=(",", ":")) + "\n")
        size = sum(f.stat().st_size for f in path.parent.iterdir() if f.name.startswith("model.onnx"))
        print(f"{name}: {size} bytes, greedy ids {ref['ids'][len(ref['steps'][0]['fed']):]}", file=sys.stderr)


if __name__ == "__main__":
    main()
