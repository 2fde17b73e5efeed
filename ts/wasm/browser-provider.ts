/**
 * Browsers and workers: `init()` fetches and compiles the build this engine runs best.
 * The default URLs are written as `new URL("literal", import.meta.url)` so that Vite,
 * webpack 5 and Parcel emit the `.wasm` files as assets with no configuration.
 */
import { WasmProvider, type InitOptions } from "./provider.js";

export const provider = new WasmProvider({
  defaultSource: (variant) =>
    variant === "simd" ? new URL("./fused_loss_simd.wasm", import.meta.url) : new URL("./fused_loss_scalar.wasm", import.meta.url),
});

/**
 * Loads the wasm build this engine runs best (SIMD128, else the baseline build; nothing
 * where WebAssembly is missing). Idempotent: concurrent and repeated calls load once.
 */
export function init(options?: InitOptions): Promise<void> {
  return provider.init(options);
}
