/** Every part's file name, in order, from the name of any one part of a split GGUF
 * (`name-00002-of-00003.gguf` → `name-00001-of-00003.gguf`, …); null for another name. */
export function splitPartNames(name: string): string[] | null;
/** The URLs of every part of the split GGUF at `url` (any part's URL, its query kept), or `[url]`
 * for one whole file. */
export function splitPartUrls(url: string | URL): string[];
/** `files` (several `.gguf` files) in part order when they are every part of one split model;
 * throws (`code` "InvalidInput") naming the missing parts, or saying that they are not one model. */
export function orderSplitFiles<F extends { name: string }>(files: readonly F[]): F[];
