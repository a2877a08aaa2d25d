/** Called as bytes arrive: `total` is null when the server sends no Content-Length. */
export type Progress = (loaded: number, total: number | null, fromCache: boolean) => void;

export interface Fetched {
  bytes: Uint8Array<ArrayBuffer>;
  fromCache: boolean;
}

export type FetchBytes = (url: string, onProgress: Progress, options?: { signal?: AbortSignal }) => Promise<Fetched>;

/** The size of one Cache API entry: larger files are stored in parts. */
export const PART_BYTES: number;
/** Fetches through the Cache API (parts of `partBytes`), keyed by the server's ETag. */
export function cachedFetcher(partBytes?: number): FetchBytes;
export const fetchWithCache: FetchBytes;
/** Fetches without the Cache API. */
export const plainFetcher: FetchBytes;
/** The cache key of one part ("manifest" or its index) of one version of a file. */
export function partKey(url: string, version: string, part: number | "manifest"): string;
/** Whether the Cache API holds a whole copy of `url` in the version of this HEAD reply. */
export function isCached(url: string, head: Response): Promise<boolean>;
