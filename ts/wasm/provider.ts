/**
 * Loading the two wasm builds, shared by every platform: which build, from where, and once.
 *
 * Each platform (Node, browsers, the embedded-wasm entry) only says where a build is by
 * default and whether it can compile one synchronously. Node can, so losses load their
 * build on first use; browsers cannot (Chromium forbids synchronous compilation of more than
 * 4 KB on the main thread), so `init()` loads it and a loss used before gets a clear error.
 */
import initScalarAsync, { initSync as initScalar } from "../../build/wasm/scalar/fused_loss.js";
import initSimdAsync, { initSync as initSimd } from "../../build/wasm/simd/fused_loss.js";
import {
  BackendUnavailableError,
  checkBackendOption,
  requestedBackend,
  setBackend,
  type Backend,
  type BackendName,
  type BackendProvider,
} from "../backend.js";
import { checkOptionNames } from "../options.js";
import { WasmBackend } from "./backend.js";
import type { WasmExports } from "./memory.js";
import { simdSupported, wasmSupported } from "./probe.js";

export type WasmVariant = "simd" | "scalar";

/** A `fetch` response. Declared by its shape so that the package's types need no DOM library. */
export interface WasmResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly url: string;
  readonly headers: { get(name: string): string | null };
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** `WebAssembly.Module` where the consumer's TypeScript libraries declare it. */
export type CompiledWasm = typeof globalThis extends { WebAssembly: { Module: new (bytes: never) => infer M } } ? M : never;

/** Where a wasm build comes from: a URL, its bytes, a response, or a compiled module. */
export type WasmSource =
  | string
  | { readonly href: string }
  | ArrayBuffer
  | ArrayBufferView
  | WasmResponse
  | PromiseLike<WasmResponse>
  | CompiledWasm;

export interface InitOptions {
  /**
   * Where the wasm comes from. Default: the `.wasm` files beside the package's JavaScript
   * (embedded copies in `fused-loss/inline`). One source: the build it holds is detected.
   * `{ simd, scalar }`: the build this engine runs best, among those given.
   */
  wasm?: WasmSource | { simd?: WasmSource; scalar?: WasmSource };
  /** Forces a backend for every loss, as `setBackend` does ('auto': the automatic choice). */
  backend?: BackendName | "auto";
}

/** What differs between platforms. */
export interface Platform {
  /** Where each build is when `init` is not told. */
  defaultSource(variant: WasmVariant): WasmSource;
  /** Compiles a build synchronously; absent where the platform cannot (browsers). */
  compileSync?(variant: WasmVariant): WebAssembly.Module;
  /** Fetches a URL given as a string or URL object (default: the global `fetch`). */
  fetch?(url: string): Promise<WasmResponse | ArrayBuffer | ArrayBufferView>;
}

type GlueInit = (module: WebAssembly.Module) => Promise<WasmExports>;
/** The wasm-bindgen glue of each build; each holds one instance, so each build loads once. */
const GLUE: Record<WasmVariant, { sync(module: WebAssembly.Module): WasmExports; async: GlueInit }> = {
  simd: {
    sync: (module) => initSimd({ module }) as unknown as WasmExports,
    async: async (module) => (await initSimdAsync({ module_or_path: module })) as unknown as WasmExports,
  },
  scalar: {
    sync: (module) => initScalar({ module }) as unknown as WasmExports,
    async: async (module) => (await initScalarAsync({ module_or_path: module })) as unknown as WasmExports,
  },
};

export const NOT_INITIALISED =
  "fused-loss: WebAssembly is not loaded yet: call `await init()` (exported by fused-loss) once before using a loss; " +
  "or pass { backend: 'js' } to a loss to use the pure-JS backend without loading anything";

const CSP_HINT =
  " (a Content-Security-Policy must allow 'wasm-unsafe-eval' in script-src; or use the pure-JS backend: `await init({ backend: 'js' })`)";

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isResponse(value: unknown): value is WasmResponse {
  return typeof value === "object" && value !== null && typeof (value as WasmResponse).arrayBuffer === "function" && "ok" in value;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return (value as object).constructor?.name ?? "object";
}

/** The build a compiled module holds, from the target_features section rustc writes. */
function declaredVariant(module: WebAssembly.Module): WasmVariant | undefined {
  const sections = WebAssembly.Module.customSections(module, "target_features");
  if (sections.length === 0) return undefined;
  // Entries are a prefix ('+' enabled), a length and a name: look for "+\x07simd128".
  const needle = [43, 7, ...Array.from("simd128", (c) => c.charCodeAt(0))];
  for (const section of sections) {
    const bytes = new Uint8Array(section);
    outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
      for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
      return "simd";
    }
  }
  return "scalar";
}

const SOURCE_KINDS = "a URL or string, bytes (ArrayBuffer or Uint8Array), a Response (or a promise of one) or a WebAssembly.Module";

/**
 * Rejects what can never be a source, before anything is loaded (and even when a build is
 * already loaded and this one would not be used). Promises are checked once they resolve.
 */
function checkSource(value: unknown, name: string): void {
  if (typeof value === "string" || value instanceof ArrayBuffer || ArrayBuffer.isView(value) || isResponse(value)) return;
  if (typeof value === "object" && value !== null) {
    if (typeof (value as { href?: unknown }).href === "string" || typeof (value as { then?: unknown }).then === "function") return;
    if (typeof WebAssembly === "object" && value instanceof WebAssembly.Module) return;
  }
  throw new TypeError(`init: ${name} must be ${SOURCE_KINDS}; got ${describe(value)}`);
}

/** Sources by build, or one source whose build is detected once compiled. */
type Sources = { kind: "each"; simd?: WasmSource; scalar?: WasmSource } | { kind: "one"; source: WasmSource };

function parseSources(wasm: InitOptions["wasm"]): Sources | undefined {
  if (wasm === undefined) return undefined;
  if (isPlainObject(wasm) && !("href" in wasm) && !("then" in wasm) && !isResponse(wasm)) {
    checkOptionNames("init({ wasm })", wasm, ["simd", "scalar"]);
    for (const variant of ["simd", "scalar"] as const) if (wasm[variant] !== undefined) checkSource(wasm[variant], `wasm.${variant}`);
    return { kind: "each", simd: wasm.simd as WasmSource | undefined, scalar: wasm.scalar as WasmSource | undefined };
  }
  checkSource(wasm, "wasm");
  return { kind: "one", source: wasm as WasmSource };
}

export class WasmProvider implements BackendProvider {
  private readonly loaded = new Map<WasmVariant, WasmBackend>();
  /** Whether an `init()` has completed: afterwards a missing build is unavailable, not early. */
  private initialised = false;
  /** `init()` calls run one after another, so concurrent calls load a build once. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly platform: Platform) {}

  simdSupported(): boolean {
    return simdSupported();
  }

  /** Throws BackendUnavailableError when this engine can never run `name`. */
  private checkEngine(name: WasmVariant): void {
    if (!wasmSupported()) {
      throw new BackendUnavailableError(
        "fused-loss: this engine cannot run the wasm builds (no WebAssembly, or no reference types / bulk memory); use the 'js' backend",
      );
    }
    if (name === "simd" && !simdSupported()) {
      throw new BackendUnavailableError("fused-loss: this engine does not support WebAssembly SIMD128; use the 'scalar' or 'js' backend");
    }
  }

  get(name: BackendName): Backend {
    if (name === "js") throw new Error("fused-loss: internal error: the JS backend is not a wasm build");
    const backend = this.loaded.get(name);
    if (backend) return backend;
    this.checkEngine(name);
    if (this.platform.compileSync) return this.instantiateSync(name, this.platform.compileSync(name));
    if (!this.initialised) throw new Error(NOT_INITIALISED);
    throw new BackendUnavailableError(`fused-loss: the '${name}' build is not loaded; call \`await init({ backend: '${name}' })\``);
  }

  prepare(name: BackendName): void {
    if (name === "js") return;
    if (this.platform.compileSync) this.get(name);
    else this.checkEngine(name);
  }

  /** Loads the build(s) the options ask for; idempotent and safe to call concurrently. */
  init(options: InitOptions = {}): Promise<void> {
    let sources: Sources | undefined;
    let backend: BackendName | "auto" | undefined;
    try {
      checkOptionNames("init", options, ["wasm", "backend"]);
      sources = parseSources(options.wasm);
      backend = options.backend === "auto" ? "auto" : checkBackendOption(options.backend);
    } catch (e) {
      return Promise.reject(e);
    }
    const run = this.queue.then(() => this.load(sources, backend));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async load(sources: Sources | undefined, backend: BackendName | "auto" | undefined): Promise<void> {
    // Fail before loading anything when this engine can never run the backend asked for.
    if (backend === "simd" || backend === "scalar") this.checkEngine(backend);
    const wanted = backend === "auto" ? undefined : (backend ?? requestedBackend());
    if (wanted === "js" || !wasmSupported()) {
      // Nothing to load: the pure-JS backend needs no setup.
    } else if (wanted !== undefined) {
      if (!this.loaded.has(wanted)) await this.loadVariant(wanted, sources, true);
    } else if (this.loaded.size === 0) {
      const order: WasmVariant[] = simdSupported() ? ["simd", "scalar"] : ["scalar"];
      const available = sources?.kind === "each" ? order.filter((v) => sources[v] !== undefined) : order;
      if (available.length === 0) {
        throw new Error(`fused-loss: init({ wasm }) gives no build this engine can run (it runs: ${order.join(", ")})`);
      }
      await this.loadVariant(available[0], sources, false);
    }
    this.initialised = true;
    if (backend !== undefined) setBackend(backend);
  }

  /**
   * Loads `variant` (or, from one source of unknown build, whichever build it holds when
   * `exact` is false) and registers it.
   */
  private async loadVariant(variant: WasmVariant, sources: Sources | undefined, exact: boolean): Promise<void> {
    if (sources === undefined && this.platform.compileSync) {
      this.instantiateSync(variant, this.platform.compileSync(variant));
      return;
    }
    let source: WasmSource;
    if (sources === undefined) source = this.platform.defaultSource(variant);
    else if (sources.kind === "one") source = sources.source;
    else {
      const given = sources[variant];
      if (given === undefined) throw new Error(`fused-loss: init({ wasm }) gives no '${variant}' build`);
      source = given;
    }
    const module = await this.compile(source, variant);
    const declared = declaredVariant(module);
    if (sources?.kind === "one") {
      if (declared === undefined) {
        throw new Error("fused-loss: cannot tell which build the wasm given to init() is; pass it as { wasm: { simd } } or { wasm: { scalar } }");
      }
      if (exact && declared !== variant) {
        throw new Error(`fused-loss: the wasm given to init() is the '${declared}' build, but the '${variant}' backend was asked for`);
      }
      variant = declared;
      if (this.loaded.has(variant)) return;
    } else if (declared !== undefined && declared !== variant) {
      throw new Error(`fused-loss: the wasm given as the '${variant}' build is the '${declared}' build`);
    }
    this.register(variant, await GLUE[variant].async(module));
  }

  private async compile(source: WasmSource, variant: WasmVariant): Promise<WebAssembly.Module> {
    let value: unknown = await source;
    if (value instanceof WebAssembly.Module) return value;
    if (typeof value === "string" || (typeof value === "object" && value !== null && typeof (value as { href?: unknown }).href === "string")) {
      const url = typeof value === "string" ? value : (value as { href: string }).href;
      try {
        value = await (this.platform.fetch ? this.platform.fetch(url) : fetch(url));
      } catch (e) {
        throw new Error(`fused-loss: cannot fetch the ${variant} wasm build from ${url}: ${(e as Error).message}`, { cause: e });
      }
    }
    try {
      if (isResponse(value)) {
        if (!value.ok) throw new Error(`fetching ${value.url || "the wasm"} failed: ${value.status} ${value.statusText}`.trimEnd());
        // Dev servers answer a missing file with their index page.
        if (value.headers.get("content-type")?.startsWith("text/html")) {
          throw new Error(
            `${value.url || "the URL"} returned an HTML page, not the wasm binary: the file is not served there ` +
              `(Vite's dev server: add optimizeDeps: { exclude: ["fused-loss"] } to its config)`,
          );
        }
        // Streaming compilation needs the right MIME type; other servers get the buffered path.
        const streaming = typeof Response === "function" && value instanceof Response && typeof WebAssembly.compileStreaming === "function";
        if (streaming && value.headers.get("content-type")?.split(";")[0].trim() === "application/wasm") {
          return await WebAssembly.compileStreaming(value as Response);
        }
        return await WebAssembly.compile(await value.arrayBuffer());
      }
      if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return await WebAssembly.compile(value as BufferSource);
    } catch (e) {
      const message = (e as Error).message ?? String(e);
      const hint = /unsafe-eval|Content Security Policy/i.test(message) ? CSP_HINT : "";
      throw new Error(`fused-loss: cannot load the ${variant} wasm build: ${message}${hint}`, { cause: e });
    }
    throw new TypeError(`init: wasm must be ${SOURCE_KINDS}; got ${describe(value)}`);
  }

  private instantiateSync(variant: WasmVariant, module: WebAssembly.Module): WasmBackend {
    return this.register(variant, GLUE[variant].sync(module));
  }

  private register(variant: WasmVariant, exports: WasmExports): WasmBackend {
    if ((exports.simd() !== 0) !== (variant === "simd")) {
      throw new Error(`fused-loss: the wasm loaded as the '${variant}' build is not that build`);
    }
    const backend = new WasmBackend(variant, exports);
    this.loaded.set(variant, backend);
    return backend;
  }
}
