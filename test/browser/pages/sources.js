/**
 * Each case imports dist/browser.js under its own query string, which gives it a fresh
 * module instance (nothing loaded yet), calls init() as the case says, and reports the
 * backend chosen and one cross-entropy value, or the error.
 */
const SIMD = "/dist/fused_loss_simd.wasm";
const SCALAR = "/dist/fused_loss_scalar.wasm";
const input = { data: new Float32Array([2, 0.5, -1, 0.1, 0.2, 3]), shape: [2, 3] };

async function bytesOf(url) {
  return (await fetch(url)).arrayBuffer();
}

const cases = {
  "url string (scalar build, detected)": () => ({ wasm: SCALAR }),
  "URL object": () => ({ wasm: new URL(SIMD, location.href) }),
  ArrayBuffer: async () => ({ wasm: await bytesOf(SIMD) }),
  "Uint8Array at an offset (scalar build)": async () => {
    const bytes = new Uint8Array(await bytesOf(SCALAR));
    const padded = new Uint8Array(bytes.length + 16);
    padded.set(bytes, 16);
    return { wasm: padded.subarray(16) };
  },
  Response: async () => ({ wasm: await fetch(SIMD) }),
  "Promise<Response>": () => ({ wasm: fetch(SIMD) }),
  "WebAssembly.Module (scalar build)": async () => ({ wasm: await WebAssembly.compile(await bytesOf(SCALAR)) }),
  "{ simd, scalar }": () => ({ wasm: { simd: SIMD, scalar: SCALAR } }),
  "{ scalar } only": () => ({ wasm: { scalar: SCALAR } }),
  "mismatch: scalar build given as simd": () => ({ wasm: { simd: SCALAR } }),
  "mismatch: simd build for the scalar backend": () => ({ wasm: SIMD, backend: "scalar" }),
  "404": () => ({ wasm: "/dist/missing.wasm" }),
  "not a source": () => ({ wasm: 42 }),
  "misspelled option": () => ({ wsam: SIMD }),
};

async function run(name, options, index) {
  const api = await import(`/dist/browser.js?case=${index}`);
  try {
    await api.init(await options());
  } catch (e) {
    // After a failed init a plain init() must still work (nothing half-loaded).
    await api.init();
    return { error: `${e.name}: ${e.message}`, retried: api.getBackend() };
  }
  return { backend: api.getBackend(), loss: new api.CrossEntropyLoss().forward(input, [0, 2]) };
}

async function main() {
  const report = {};
  let i = 0;
  for (const [name, options] of Object.entries(cases)) report[name] = await run(name, options, i++);
  return report;
}

main().then(
  (report) => (window.__result = report),
  (e) => (window.__error = String(e?.stack ?? e)),
);
