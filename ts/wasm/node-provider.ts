/**
 * Node: the wasm builds are read from disk and compiled synchronously on first use, so
 * `import`/`require` need no `await` and no setup (`init()` exists for isomorphic code).
 */
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { BackendUnavailableError } from "../backend.js";
import { WasmProvider, type InitOptions, type WasmVariant } from "./provider.js";

/**
 * The URL of the JavaScript running this code: this module, or else (a user's CommonJS
 * bundle of the ESM build has no import.meta.url) the script Node was started with.
 */
function running(): string | undefined {
  if (typeof import.meta.url === "string") return import.meta.url;
  const script = process.argv[1];
  return script ? pathToFileURL(script).href : undefined;
}

/** Where the binary is: beside the bundle in `dist/`, or in `build/` when run from source. */
function locate(variant: WasmVariant): string {
  const base = running();
  const candidates = [`./fused_loss_${variant}.wasm`, `../fused_loss_${variant}.wasm`, `../../build/wasm/${variant}/fused_loss_bg.wasm`];
  for (const c of base ? candidates : []) {
    const path = fileURLToPath(new URL(c, base));
    if (existsSync(path)) return path;
  }
  throw new BackendUnavailableError(
    `fused-loss: fused_loss_${variant}.wasm not found next to the JavaScript that runs fused-loss` +
      " (a bundle for Node needs the two .wasm files beside it, or import fused-loss/inline)",
  );
}

/** A string with a scheme is a URL (one-letter schemes are Windows drives); else a path. */
async function fetchOrRead(url: string) {
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) return readFile(url);
  if (scheme === "file") return readFile(fileURLToPath(url));
  return fetch(url);
}

export const provider = new WasmProvider({
  defaultSource: (variant) => readFileSync(locate(variant)),
  compileSync: (variant) => new WebAssembly.Module(readFileSync(locate(variant))),
  fetch: fetchOrRead,
});

/**
 * Loads the wasm build now (losses would on first use anyway). Options as in browsers: a
 * `wasm` source (in Node also a file path) and a `backend` to force.
 */
export function init(options?: InitOptions): Promise<void> {
  return provider.init(options);
}
