// The names of a split GGUF's parts, as llama.cpp's gguf-split (and gguf-py) write them:
// `<name>-00001-of-00003.gguf`, counted from 1, five digits each. Each part is a GGUF of its own;
// `Model.fromGguf` takes them all and reads them as one model.
import { codedError } from "./fetcher.js";

const PART_NAME = /^(.*)-(\d{5})-of-(\d{5})(\.gguf)$/i;

/** Every part's file name, in order, from the name of any one part; null for another name. */
export function splitPartNames(name: string): string[] | null {
  const match = PART_NAME.exec(name);
  if (!match) return null;
  const [, stem, number = "", of = "", extension] = match;
  const count = Number(of);
  if (Number(number) < 1 || Number(number) > count) return null;
  return Array.from({ length: count }, (_, i) => `${stem}-${String(i + 1).padStart(5, "0")}-of-${of}${extension}`);
}

/** The URLs of every part of the split GGUF at `url` (any part's URL, its query kept: a Hugging
 * Face `…/resolve/main/<name>-00001-of-00003.gguf?download=true` gives its siblings), or `[url]`
 * for one whole file. */
export function splitPartUrls(url: string | URL): string[] {
  const parsed = new URL(url, globalThis.location?.href);
  const slash = parsed.pathname.lastIndexOf("/") + 1;
  const names = splitPartNames(decodeURIComponent(parsed.pathname.slice(slash)));
  if (!names) return [parsed.href];
  return names.map((name) => {
    const part = new URL(parsed.href);
    part.pathname = parsed.pathname.slice(0, slash) + encodeURIComponent(name);
    return part.href;
  });
}

/** `files` (.gguf files, or one that is named as a part) in part order when they are every part
 * of one split model; throws (`code` "InvalidInput") saying which parts are missing, or that the
 * files are not parts of one model. */
export function orderSplitFiles<F extends { name: string }>(files: readonly F[]): F[] {
  const names = files[0] ? splitPartNames(files[0].name) : null;
  const byName = new Map(files.map((f) => [f.name.toLowerCase(), f]));
  if (!names || files.some((f) => !names.some((n) => n.toLowerCase() === f.name.toLowerCase())) || byName.size !== files.length) {
    throw codedError("InvalidInput", `${files.length} .gguf files: give one (it holds the whole model), or every part of one split model (name-00001-of-00003.gguf, …)`);
  }
  const missing = names.filter((n) => !byName.has(n.toLowerCase()));
  if (missing.length > 0) {
    throw codedError("InvalidInput", `the model is split into ${names.length} parts: ${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} missing; give them all together`);
  }
  return names.map((n) => byName.get(n.toLowerCase()) as F);
}
