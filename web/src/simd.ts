// The wasm package is built with simd128 (tract's SIMD kernels): a browser without WebAssembly
// SIMD cannot even compile it, so the page checks first and says so plainly.

// The smallest module using a SIMD instruction (i8x16.splat; from wasm-feature-detect).
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

export function hasWasmSimd(): boolean {
  try {
    return typeof WebAssembly === "object" && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}
