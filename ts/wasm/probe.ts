/**
 * Feature probes, run once per engine: which wasm build, if any, this engine can run.
 *
 * Both builds use the post-MVP features rustc enables by default (reference types for
 * wasm-bindgen's externref table, bulk memory, sign extension, saturating float-to-int,
 * multi-value), so an engine that has WebAssembly but not these (Chrome < 96, Firefox < 79,
 * Safari < 15) gets the pure-JS backend instead of a CompileError.
 */

/** A minimal module using a SIMD128 instruction (i8x16.popcnt on a splat). */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

/**
 * A minimal module that validates only with every feature the scalar build needs: an
 * externref table, memory.copy, i32.extend8_s, i32.trunc_sat_f32_s and two results.
 */
const BASELINE_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 13, 2, 96, 2, 127, 125, 2, 127, 127, 96, 0, 2, 127, 127, 3, 2, 1, 0, 4, 4, 1, 111,
  0, 1, 5, 3, 1, 0, 1, 10, 21, 1, 19, 0, 65, 0, 65, 8, 65, 4, 252, 10, 0, 0, 32, 0, 192, 32, 1, 252, 0, 11,
]);

let simd: boolean | undefined;
let baseline: boolean | undefined;

function validates(bytes: Uint8Array<ArrayBuffer>): boolean {
  return typeof WebAssembly === "object" && typeof WebAssembly.validate === "function" && WebAssembly.validate(bytes);
}

/** Whether this engine can run the baseline (scalar) wasm build. */
export function wasmSupported(): boolean {
  baseline ??= validates(BASELINE_PROBE) && typeof WebAssembly.Module === "function";
  return baseline;
}

/** Whether this engine can run the SIMD128 build (false where WebAssembly itself is missing). */
export function simdSupported(): boolean {
  simd ??= wasmSupported() && validates(SIMD_PROBE);
  return simd;
}
