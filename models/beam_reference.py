#!/usr/bin/env python3
"""The reference beam search: Hugging Face transformers' `BeamSearchScorer` and `BeamHypotheses`
(length penalty, early stopping True/False/"never", a finished hypothesis only from the first
`num_beams` candidates), transcribed in numpy, over
  - synthetic logits, a hash of the sequence that crate/tests/native/beam.rs computes alike, so
    that the search itself is compared, bit for bit;
  - onnxruntime's logits of the tiny model's and SmolLM2's ONNX exports, each sequence fed whole,
    which the engine's beam search (tract on the same files) must follow.
Writes the hypotheses and their scores to crate/tests/fixtures/beam_reference.json (committed).

  models/build.sh beams   (after models/build.sh: SmolLM2's model.onnx)
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import runners  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "crate/tests/fixtures/beam_reference.json"
# The prompt of the generation fixtures (crate/tests/common/tiny.rs).
PROMPT = "Once upon a time, there was a little"


def load(folder):
    cfg = json.loads((folder / "config.json").read_text())
    proto = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    embed = next(numpy_helper.to_array(t) for t in proto.graph.initializer
                 if t.name == "model.embed_tokens.weight").astype(np.float32)
    runner = runners.ort_runner(folder / "model.onnx", cfg, embed)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    return runner, tokenizer


def log_softmax(logits):
    z = logits.astype(np.float64)
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


class BeamHypotheses:
    """transformers' BeamHypotheses: the best `num_beams` finished sequences."""

    def __init__(self, num_beams, length_penalty, early_stopping, max_new_tokens):
        self.num_beams, self.length_penalty = num_beams, length_penalty
        self.early_stopping, self.max_new_tokens = early_stopping, max_new_tokens
        self.beams, self.worst_score = [], 1e9

    def add(self, hyp, sum_logprobs, generated_len):
        score = sum_logprobs / (generated_len ** self.length_penalty)
        if len(self.beams) < self.num_beams or score > self.worst_score:
            self.beams.append((score, hyp, sum_logprobs))
            if len(self.beams) > self.num_beams:
                ranked = sorted((s, i) for i, (s, _, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst_score = ranked[1][0]
            else:
                self.worst_score = min(score, self.worst_score)

    def is_done(self, best_sum_logprobs, generated_len):
        if len(self.beams) < self.num_beams:
            return False
        if self.early_stopping is True:
            return True
        if self.early_stopping is False or self.length_penalty <= 0.0:
            return self.worst_score >= best_sum_logprobs / generated_len ** self.length_penalty
        return self.worst_score >= best_sum_logprobs / self.max_new_tokens ** self.length_penalty


SYNTHETIC_VOCAB = 50


def synthetic_logits(sequence):
    """FNV-1a over the tokens, mixed with each token id (a murmur-style finaliser), scaled to
    [0, 6) in f32."""
    h = 2166136261
    for t in sequence:
        h = ((h ^ (t + 1)) * 16777619) % 2**32
    out = []
    for v in range(SYNTHETIC_VOCAB):
        x = h ^ (((v + 1) * 2654435761) % 2**32)
        x = ((x ^ (x >> 15)) * 2246822519) % 2**32
        x ^= x >> 13
        out.append(np.float32(x / 2**32 * 6.0))
    return np.array(out, dtype=np.float32)


def ort_logits(runner, prompt):
    return lambda tokens: runner.ids(prompt + tokens, runner.empty_past())[0][-1]


def beam_search(next_logits, num_beams, max_new_tokens, length_penalty, early_stopping, eos):
    """BeamSearchScorer.process/finalize for one prompt; `next_logits(tokens)`: the logits after
    the prompt and a beam's tokens."""
    beams = [([], 0.0)]
    hyps = BeamHypotheses(num_beams, length_penalty, early_stopping, max_new_tokens)
    for step in range(max_new_tokens):
        scores = [log_softmax(next_logits(tokens)) + total for tokens, total in beams]
        flat = np.concatenate(scores)
        vocab = len(scores[0])
        # torch.topk: the best 2 * num_beams, ties to the lower flat index.
        order = np.lexsort((np.arange(len(flat)), -flat))[:2 * num_beams]
        next_beams = []
        for rank, index in enumerate(order):
            beam, token = divmod(int(index), vocab)
            if int(token) in eos:
                if rank >= num_beams:
                    continue
                hyps.add(beams[beam][0] + [token], float(flat[index]), step + 1)
            else:
                next_beams.append((beams[beam][0] + [token], float(flat[index])))
            if len(next_beams) == num_beams:
                break
        done = hyps.is_done(float(flat[order[0]]), step + 1)
        if done or not next_beams or step + 1 == max_new_tokens:
            if not done:
                for tokens, total in next_beams:
                    hyps.add(tokens, total, len(tokens))
            break
        beams = next_beams
    return [{"tokens": hyp, "score": score, "sumLogProb": total}
            for score, hyp, total in sorted(hyps.beams, key=lambda b: -b[0])]


def main():
    cases = []
    synthetic_prompt = [1, 2, 3]
    for config in [
        {"beams": 4, "maxTokens": 12, "lengthPenalty": 1.0, "earlyStopping": False, "stopTokens": [7]},
        {"beams": 3, "maxTokens": 12, "lengthPenalty": 0.5, "earlyStopping": True, "stopTokens": [3, 11, 19]},
        {"beams": 4, "maxTokens": 12, "lengthPenalty": 2.0, "earlyStopping": "never", "stopTokens": [5, 6]},
        {"beams": 6, "maxTokens": 9, "lengthPenalty": -0.5, "earlyStopping": False, "stopTokens": [0, 1, 2, 4]},
        {"beams": 2, "maxTokens": 12, "lengthPenalty": 1.0, "earlyStopping": "never", "stopTokens": []},
        {"beams": 16, "maxTokens": 6, "lengthPenalty": 1.0, "earlyStopping": False, "stopTokens": [9, 10, 12]},
    ]:
        results = beam_search(lambda tokens: synthetic_logits(synthetic_prompt + tokens), config["beams"], config["maxTokens"],
                              config["lengthPenalty"], config["earlyStopping"], set(config["stopTokens"]))
        cases.append({"model": "synthetic", "prompt": synthetic_prompt, "config": config, "results": results})
    tiny_runner, tiny_tokenizer = load(HERE / "tiny")
    prompt = tiny_tokenizer.encode(PROMPT).ids
    first, _ = tiny_runner.ids(prompt, tiny_runner.empty_past())
    likely = [int(t) for t in np.argsort(-first[-1])]
    # Stop tokens among the likely ones, so that hypotheses finish early and compete.
    configs = [
        {"beams": 4, "maxTokens": 16, "lengthPenalty": 1.0, "earlyStopping": False, "stopTokens": [likely[2]]},
        {"beams": 3, "maxTokens": 12, "lengthPenalty": 0.5, "earlyStopping": True, "stopTokens": [likely[1], likely[6]]},
        {"beams": 4, "maxTokens": 10, "lengthPenalty": 2.0, "earlyStopping": "never", "stopTokens": [likely[3]]},
        {"beams": 5, "maxTokens": 8, "lengthPenalty": -1.0, "earlyStopping": False, "stopTokens": [likely[4]]},
        {"beams": 1, "maxTokens": 8, "lengthPenalty": 1.0, "earlyStopping": False, "stopTokens": []},
    ]
    for config in configs:
        results = beam_search(ort_logits(tiny_runner, prompt), config["beams"], config["maxTokens"], config["lengthPenalty"],
                              config["earlyStopping"], set(config["stopTokens"]))
        cases.append({"model": "tiny", "config": config, "results": results})
    smollm2 = HERE / "smollm2-135m"
    runner, tokenizer = load(smollm2)
    eos = [tokenizer.token_to_id(t) for t in ["<|endoftext|>", "<|im_end|>"]]
    config = {"beams": 4, "maxTokens": 16, "lengthPenalty": 1.0, "earlyStopping": False, "stopTokens": eos}
    results = beam_search(ort_logits(runner, tokenizer.encode(PROMPT).ids), 4, 16, 1.0, False, set(eos))
    cases.append({"model": "smollm2", "config": config, "results": results})
    OUT.write_text(json.dumps({"prompt": PROMPT, "cases": cases}, indent=1) + "\n")
    for case in cases:
        best = case["results"][0]
        print(f"{case['model']} {case['config']}: {len(case['results'])} hypotheses, best {best['tokens']} ({best['score']:.4f})")


if __name__ == "__main__":
    main()
