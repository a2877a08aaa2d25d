// Relative asset URLs, so that the built app can be served from any folder.
export default { base: "./", build: { target: "es2022", chunkSizeWarningLimit: 30_000 } };
