/**
 * `fused-loss/inline`: both builds embedded as base64 (decoded on first use), so any
 * bundler works with no asset handling at all. Node compiles synchronously as the main
 * entry does; browsers still need `await init()` (no synchronous compile on the main thread).
 */
import { scalar, simd } from "fused-loss:embedded-wasm";
import { WasmProvider, type InitOptions, type WasmVariant } from "./provider.js";

const BASE64: Record<WasmVariant, string> = { simd, scalar };

function bytes(variant: WasmVariant): Uint8Array<ArrayBuffer> {
  const text = atob(BASE64[variant]);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

const isNode = typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions?.node === "string";

export const provider = new WasmProvider({
  defaultSource: bytes,
  compileSync: isNode ? (variant) => new WebAssembly.Module(bytes(variant)) : undefined,
});

/** As the browser entry's `init`: loads the best build (in Node it also loads on first use). */
export function init(options?: InitOptions): Promise<void> {
  return provider.init(options);
}
