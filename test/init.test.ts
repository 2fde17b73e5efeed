/**
 * `init()` in Node (the browser's is exercised in Chromium by test/browser): it exists so
 * that isomorphic code can await it, forces a backend, takes explicit sources (a file path,
 * a file: URL, bytes, a Module), loads each build once under concurrent calls, and rejects
 * bad options clearly. Each test imports a fresh copy of the package (nothing loaded yet).
 */
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

type Api = typeof import("../ts/index.js");
const wasmFile = (variant: string) => fileURLToPath(new URL(`../build/wasm/${variant}/fused_loss_bg.wasm`, import.meta.url));
const input = { data: new Float32Array([2, 0.5, -1, 0.1, 0.2, 3]), shape: [2, 3] };

async function freshApi(): Promise<Api> {
  vi.resetModules();
  return import("../ts/index.js");
}

describe("init() in Node", () => {
  let env: string | undefined;
  beforeEach(() => {
    env = process.env.FUSED_LOSS_BACKEND;
    delete process.env.FUSED_LOSS_BACKEND;
  });
  afterEach(() => {
    if (env === undefined) delete process.env.FUSED_LOSS_BACKEND;
    else process.env.FUSED_LOSS_BACKEND = env;
    vi.restoreAllMocks();
  });

  it("resolves, is idempotent, and losses work before it as after it (no await needed in Node)", async () => {
    const api = await freshApi();
    const before = api.crossEntropy(input, [0, 2]);
    await api.init();
    await Promise.all([api.init(), api.init()]);
    expect(api.getBackend()).toBe("simd");
    expect(api.crossEntropy(input, [0, 2])).toBe(before);
  });

  it("{ backend } forces a backend as setBackend does, and 'auto' restores the automatic choice", async () => {
    const api = await freshApi();
    await api.init({ backend: "scalar" });
    expect(api.getBackend()).toBe("scalar");
    await api.init({ backend: "js" });
    expect(api.getBackend()).toBe("js");
    await api.init({ backend: "auto" });
    expect(api.getBackend()).toBe("simd");
  });

  it("takes a file path, a file: URL, bytes or a compiled Module, and detects which build it is", async () => {
    const sources = [
      wasmFile("scalar"),
      pathToFileURL(wasmFile("scalar")),
      readFileSync(wasmFile("scalar")),
      new WebAssembly.Module(readFileSync(wasmFile("scalar"))),
    ];
    const expected = (await freshApi()).crossEntropy(input, [0, 2]);
    for (const wasm of sources) {
      const api = await freshApi();
      await api.init({ wasm, backend: "scalar" });
      expect(api.getBackend()).toBe("scalar");
      expect(api.crossEntropy(input, [0, 2])).toBe(expected);
    }
  });

  it("compiles a build once when init({ wasm }) is called concurrently", async () => {
    const api = await freshApi();
    const compile = vi.spyOn(WebAssembly, "compile");
    const bytes = readFileSync(wasmFile("simd"));
    await Promise.all([api.init({ wasm: bytes }), api.init({ wasm: bytes }), api.init()]);
    expect(compile).toHaveBeenCalledTimes(1);
    expect(api.getBackend()).toBe("simd");
  });

  it("rejects a build that does not match the backend asked for, and bad options, with clear errors", async () => {
    const api = await freshApi();
    await expect(api.init({ wasm: readFileSync(wasmFile("simd")), backend: "scalar" })).rejects.toThrow(
      "fused-loss: the wasm given to init() is the 'simd' build, but the 'scalar' backend was asked for",
    );
    await expect(api.init({ wasm: { scalar: readFileSync(wasmFile("simd")) }, backend: "scalar" })).rejects.toThrow(
      "fused-loss: the wasm given as the 'scalar' build is the 'simd' build",
    );
    await expect(api.init({ wasm: wasmFile("missing") })).rejects.toThrow(/cannot fetch the simd wasm build from .*missing.*ENOENT/);
    await expect(api.init({ wasm: new Uint8Array([1, 2, 3]) })).rejects.toThrow(/cannot load the simd wasm build: .*WebAssembly\.compile/);
    await expect(api.init({ wasm: 42 as never })).rejects.toThrow(TypeError);
    await expect(api.init({ backend: "gpu" as never })).rejects.toThrow("backend must be 'simd', 'scalar' or 'js', got \"gpu\"");
    await expect(api.init({ wasm: { simd: wasmFile("simd"), avx: "x" } as never })).rejects.toThrow("init({ wasm }) got an unknown option 'avx'");
    // Nothing was left half-loaded: the automatic choice still works.
    await api.init();
    expect(api.getBackend()).toBe("simd");
  });

  it("rejects what is not a wasm source even when a build is already loaded (it would not be used)", async () => {
    const api = await freshApi();
    const before = api.crossEntropy(input, [0, 2]); // loads the SIMD build on first use
    await api.init();
    const message = /^init: wasm must be a URL or string, .* got number$/;
    await expect(api.init({ wasm: 42 as never })).rejects.toThrow(message);
    await expect(api.init({ wasm: { simd: 42 } as never })).rejects.toThrow(/^init: wasm\.simd must be .* got number$/);
    await expect(api.init({ wasm: { scalar: null } as never })).rejects.toThrow(/^init: wasm\.scalar must be .* got null$/);
    await expect(api.init({ wasm: 42 as never, backend: "scalar" })).rejects.toThrow(TypeError);
    // The rejected calls changed nothing.
    expect(api.getBackend()).toBe("simd");
    expect(api.crossEntropy(input, [0, 2])).toBe(before);
  });
});
