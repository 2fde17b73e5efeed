/**
 * Node: the wasm builds are read from disk and compiled synchronously on first use, so
 * `import`/`require` need no `await` and no setup.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { initSync as initScalar } from "../../build/wasm/scalar/fused_loss.js";
import { initSync as initSimd } from "../../build/wasm/simd/fused_loss.js";
import { BackendUnavailableError, type Backend, type BackendName, type BackendProvider } from "../backend.js";
import { WasmBackend } from "./backend.js";
import type { WasmExports } from "./memory.js";
import { simdSupported, wasmSupported } from "./probe.js";

type Variant = "simd" | "scalar";
const INIT: Record<Variant, (m: { module: WebAssembly.Module }) => unknown> = { simd: initSimd, scalar: initScalar };

/** Where the binary is: beside the bundle in `dist/`, or in `build/` when run from source. */
function locate(variant: Variant): string {
  const candidates = [`./fused_loss_${variant}.wasm`, `../fused_loss_${variant}.wasm`, `../../build/wasm/${variant}/fused_loss_bg.wasm`];
  for (const c of candidates) {
    const path = fileURLToPath(new URL(c, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new BackendUnavailableError(`fused-loss: fused_loss_${variant}.wasm not found next to the package's JavaScript`);
}

const loaded = new Map<Variant, Backend>();

export const nodeProvider: BackendProvider = {
  simdSupported,
  get(name: BackendName): Backend {
    if (name === "js") throw new Error("unreachable: the JS backend is not a wasm build");
    const cached = loaded.get(name);
    if (cached) return cached;
    if (!wasmSupported()) throw new BackendUnavailableError("fused-loss: WebAssembly is not available in this runtime");
    if (name === "simd" && !simdSupported()) {
      throw new BackendUnavailableError("fused-loss: this engine does not support WebAssembly SIMD128; use the 'scalar' or 'js' backend");
    }
    const module = new WebAssembly.Module(readFileSync(locate(name)));
    const exports = INIT[name]({ module }) as WasmExports;
    const backend = new WasmBackend(name, exports);
    loaded.set(name, backend);
    return backend;
  },
};
