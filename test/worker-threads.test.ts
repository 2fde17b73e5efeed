/**
 * Node worker_threads: each worker loads its own wasm instance from the built package (ESM,
 * CommonJS and the inline entry), concurrently, and computes what the main thread computes,
 * bit for bit.
 */
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import type { ScenarioResult } from "./browser/scenario.js";

const dist = (file: string) => fileURLToPath(new URL(`../dist/${file}`, import.meta.url));
const scenario = new URL("./browser/scenario.js", import.meta.url).href;

/** Worker code (CommonJS, `eval`): loads the package with `load`, runs the scenario, posts it. */
function workerCode(load: string): string {
  return `
    const { parentPort, workerData } = require("node:worker_threads");
    (async () => {
      const api = ${load};
      await api.init();
      const { runScenario } = await import(workerData.scenario);
      parentPort.postMessage(runScenario(api));
    })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));`;
}

function runWorker(load: string): Promise<ScenarioResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerCode(load), { eval: true, workerData: { scenario }, env: { ...process.env, FUSED_LOSS_BACKEND: "" } });
    worker.once("message", (m: ScenarioResult & { error?: string }) => {
      void worker.terminate();
      if (m.error) reject(new Error(m.error));
      else resolve(m);
    });
    worker.once("error", reject);
  });
}

describe("worker_threads", () => {
  it("ESM, CommonJS and inline entries in concurrent workers match the main thread bit for bit", async () => {
    const api = await import("../dist/index.js");
    const { runScenario } = await import("./browser/scenario.js");
    api.setBackend("auto");
    const main = runScenario(api);
    expect(main.backend).toBe("simd");
    const results = await Promise.all([
      runWorker(`await import(${JSON.stringify(new URL(`file://${dist("index.js")}`).href)})`),
      runWorker(`await import(${JSON.stringify(new URL(`file://${dist("index.js")}`).href)})`),
      runWorker(`require(${JSON.stringify(dist("index.cjs"))})`),
      runWorker(`require(${JSON.stringify(dist("inline.cjs"))})`),
    ]);
    // Structured clones keep every float exactly; toStrictEqual compares numbers with Object.is.
    for (const r of results) expect(r).toStrictEqual(main);
  });
});
