"""GPT-2 byte-level BPE, written out independently of HF `tokenizers`.

Three jobs:
- `hf_tokenizer_json` writes a HF tokenizers `tokenizer.json` (SmolLM2 layout) from a vocab + merges.
- `ByteLevelBPE` is a small pure-Python encoder used as the *reference* the HF file is checked
  against (it shares no code with HF tokenizers, only the published algorithm).
- `train_bpe` learns merges deterministically from a text (for the tiny test tokenizer, so it
  needs no model download).
"""
from collections import Counter
import functools

import regex

# GPT-2's pre-tokenizer regex (what HF ByteLevel(use_regex=true) uses).
GPT2_PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
# SmolLM2 first isolates every numeric char (HF Digits(individual_digits=true), llama.cpp "\p{N}").
DIGIT = regex.compile(r"\p{N}")


@functools.cache
def bytes_to_unicode():
    """GPT-2's reversible map byte -> printable unicode char."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def pre_tokenize(text):
    """Digits split one by one, then the GPT-2 regex on each remaining piece."""
    pieces, last = [], 0
    for m in DIGIT.finditer(text):
        pieces += [text[last:m.start()], m.group()]
        last = m.end()
    pieces.append(text[last:])
    return [w for p in pieces if p for w in GPT2_PATTERN.findall(p)]


class ByteLevelBPE:
    def __init__(self, tokens, merges, special_ids):
        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.tokens = list(tokens)
        self.ranks = {tuple(m): r for r, m in enumerate(merges)}
        self.specials = sorted((tokens[i] for i in special_ids), key=len, reverse=True)
        self.b2u = bytes_to_unicode()
        self.u2b = {u: b for b, u in self.b2u.items()}

    def _bpe(self, word):
        parts = list(word)
        while len(parts) > 1:
            pairs = [(self.ranks.get(p, 1 << 60), i) for i, p in enumerate(zip(parts, parts[1:]))]
            rank, i = min(pairs)
            if rank == 1 << 60:
                break
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        return parts

    def encode(self, text):
        ids, i = [], 0
        while i < len(text):  # special tokens are matched in the raw text first
            nxt = min(((text.find(s, i), s) for s in self.specials if text.find(s, i) >= 0),
                      default=(len(text), None), key=lambda t: t[0])
            for w in pre_tokenize(text[i:nxt[0]]):
                mapped = "".join(self.b2u[b] for b in w.encode("utf-8"))
                # No unk token: symbols missing from the vocab are dropped (as HF BPE does).
                ids += [self.vocab[p] for p in self._bpe(mapped) if p in self.vocab]
            if nxt[1] is None:
                break
            ids.append(self.vocab[nxt[1]])
            i = nxt[0] + len(nxt[1])
        return ids

    def decode(self, ids):
        return bytes(self.u2b[c] for i in ids for c in self.tokens[i]).decode("utf-8", "replace")


def train_bpe(text, n_merges):
    """Deterministic BPE training: most frequent pair, ties broken by the pair's strings."""
    b2u = bytes_to_unicode()
    words = Counter(tuple(b2u[b] for b in w.encode("utf-8")) for w in pre_tokenize(text))
    merges = []
    while len(merges) < n_merges:
        pairs = Counter()
        for w, c in words.items():
            for p in zip(w, w[1:]):
                pairs[p] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        new = Counter()
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] += c
        words = new
    return merges


def hf_tokenizer_json(tokens, merges, special_ids):
    """The tokenizer.json layout of HF's SmolLM2 (GPT-2 byte-level BPE, digits split)."""
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": tokens[i], "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": False, "special": True}
            for i in special_ids
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": True},
        ]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True,
                           "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None,
            "continuing_subword_prefix": None, "end_of_word_suffix": None,
            "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": {t: i for i, t in enumerate(tokens)},
            "merges": [list(m) for m in merges],
        },
    }


# Sentences whose ids go into the reference fixtures (digits, punctuation, whitespace runs,
# ChatML specials, non-ASCII, code).
TEST_SENTENCES = [
    "Hello, world!",
    "In 1984, 3.14 apples cost $42.",
    "The quick brown fox jumps over the lazy dog.\nNew line,\tthen a tab and   three spaces.",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "Café crème, naïve Übermensch, über straße.",
    "日本語のテキストと中文。",
    "Emoji: 🙂🚀 and ❤️!",
    "It's, I'm, we'll, they've \u2014 don't you'd?",
    "   leading spaces, trailing spaces   \n\n\nand blank lines",
    'fn main() { println!("{}", x[0] + 1_000); }',
    "Fractions ½ and ⅓, superscript x² and Ⅻ.",
]
