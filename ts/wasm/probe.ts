/** Feature probe: a minimal module using a SIMD128 instruction (i8x16.popcnt on a splat). */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

let simd: boolean | undefined;

/** Whether this engine validates wasm SIMD128 (false where WebAssembly itself is missing). */
export function simdSupported(): boolean {
  if (simd === undefined) {
    simd = typeof WebAssembly === "object" && typeof WebAssembly.validate === "function" && WebAssembly.validate(SIMD_PROBE);
  }
  return simd;
}

export function wasmSupported(): boolean {
  return typeof WebAssembly === "object" && typeof WebAssembly.Module === "function";
}
