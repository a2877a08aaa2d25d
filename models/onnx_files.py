"""The files of an ONNX build beside each other: model.onnx (checked), config.json (the
runtime's config) and tokenizer.json (checked against the independent BPE of bpe.py)."""
import sys

import onnx

import bpe
import llama_onnx
from common import log, read_paragraph, write_json


def write_model(model, path):
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())  # one protobuf, no external data


def write_config(path, cfg, tok, dtype, extra):
    special = {tok["tokens"][i]: i for i in tok["special_ids"]}
    write_json(path, {
        **extra,
        "model_type": "llama",
        **cfg,
        "bos_token_id": tok["bos"], "eos_token_id": tok["eos"], "pad_token_id": tok["pad"],
        "add_bos_token": tok["add_bos"],
        "im_start_token_id": special["<|im_start|>"], "im_end_token_id": special["<|im_end|>"],
        "special_tokens": special,
        "chat_template": tok["chat_template"],
        "weights_dtype": {"f16": "float16", "f32": "float32"}[dtype],
        "embed_tokens_dtype": {"f16": "float16", "f32": "float32"}[dtype],
        "compute_dtype": "float32",
        "onnx": llama_onnx.signature(cfg),
    })


def build_tokenizer(out_dir, tok):
    """tokenizer.json, checked against the independent BPE on the test sentences."""
    from tokenizers import Tokenizer
    obj = bpe.hf_tokenizer_json(tok["tokens"], tok["merges"], tok["special_ids"])
    write_json(out_dir / "tokenizer.json", obj)
    hf = Tokenizer.from_file(str(out_dir / "tokenizer.json"))
    ref = bpe.ByteLevelBPE(tok["tokens"], tok["merges"], tok["special_ids"])
    cases = []
    texts = bpe.TEST_SENTENCES + [read_paragraph()]
    for text in texts:
        ids = ref.encode(text)
        got = hf.encode(text, add_special_tokens=False).ids
        if got != ids:
            sys.exit(f"FATAL: tokenizer mismatch on {text!r}:\n HF  {got}\n ref {ids}")
        if hf.decode(got, skip_special_tokens=False) != text:
            sys.exit(f"FATAL: tokenizer does not round-trip {text!r}")
        cases.append({"text": text, "ids": ids})
    log(f"tokenizer: {len(tok['tokens'])} tokens, {len(tok['merges'])} merges; "
        f"HF tokenizers == reference BPE on {len(texts)} texts, all round-trip")
    return hf, cases[:-1]
