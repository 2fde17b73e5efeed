/**
 * fused-loss: PyTorch-exact losses with forward and backward fused in one WebAssembly SIMD
 * sweep. One source for every entry point: ts/platform.ts decides how the wasm loads (Node:
 * synchronously on first use; browsers: `await init()`; `fused-loss/inline`: embedded).
 */
export * from "./api.js";
export { init } from "./platform.js";
export type { InitOptions, WasmSource, WasmResponse, CompiledWasm } from "./wasm/provider.js";
