/**
 * A bundled app (built by Vite and by webpack with no configuration): the scenario on the
 * page and in a module Web Worker, both importing "fused-loss" by its package name.
 */
import * as api from "fused-loss";
import { runScenario } from "./scenario.js";

async function main() {
  await api.init();
  const page = runScenario(api);
  const worker = new Worker(new URL("./app-worker.js", import.meta.url), { type: "module" });
  const inWorker = await new Promise((resolve, reject) => {
    worker.onmessage = (e) => (e.data.error ? reject(new Error(e.data.error)) : resolve(e.data));
    worker.onerror = (e) => reject(new Error(e.message));
  });
  return { page, worker: inWorker };
}

main().then(
  (report) => (window.__result = report),
  (e) => (window.__error = String(e?.stack ?? e)),
);
