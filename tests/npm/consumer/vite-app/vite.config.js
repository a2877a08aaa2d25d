// Relative asset URLs, so that the built app can be served from any folder. `vite dev` isolates
// the page, as the package's README asks for threads.
const isolation = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };
export default { base: "./", build: { target: "es2022", chunkSizeWarningLimit: 30_000 }, server: { headers: isolation } };
