/**
 * What the plain page does, chosen by `?mode=`:
 *   default  init() twice concurrently and once more, then the scenario
 *   scalar   init({ backend: "scalar" })
 *   setbackend  setBackend("scalar") before init(), which then loads that build
 *   stub     WebAssembly.validate rejects SIMD (as an engine without SIMD128 does), then init()
 *   nowasm   no WebAssembly at all, then init()
 *   worker   the scenario in a module Web Worker importing dist/ directly
 * It leaves its report in window.__result (or window.__error).
 */
import * as api from "fused-loss";
import { runScenario } from "../scenario.js";

const mode = new URLSearchParams(location.search).get("mode") ?? "default";

async function main() {
  // The engine is changed before anything runs the package's probes (they run once).
  if (mode === "stub") {
    const validate = WebAssembly.validate.bind(WebAssembly);
    // 0xfd prefixes every SIMD128 instruction; the baseline probe has none.
    WebAssembly.validate = (bytes) => !new Uint8Array(ArrayBuffer.isView(bytes) ? bytes.buffer : bytes).includes(0xfd) && validate(bytes);
  }
  if (mode === "nowasm") delete globalThis.WebAssembly;
  const report = { mode };
  try {
    new api.CrossEntropyLoss().forward({ data: new Float32Array([1, 2, 3]), shape: [3] }, [0]);
    report.beforeInit = "no error";
  } catch (e) {
    report.beforeInit = e.message;
  }
  if (mode === "worker") {
    const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    report.scenario = await new Promise((resolve, reject) => {
      worker.onmessage = (e) => (e.data.error ? reject(new Error(e.data.error)) : resolve(e.data));
      worker.onerror = (e) => reject(new Error(e.message));
    });
    return report;
  }
  if (mode === "scalar") await api.init({ backend: "scalar" });
  else if (mode === "setbackend") {
    api.setBackend("scalar");
    await api.init();
  }
  else await Promise.all([api.init(), api.init()]).then(() => api.init());
  report.scenario = runScenario(api);
  return report;
}

main().then(
  (report) => (window.__result = report),
  (e) => (window.__error = String(e?.stack ?? e)),
);
