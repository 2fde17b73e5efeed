/**
 * Concurrency: many loss instances used in interleaved order, and `worker_threads` running the
 * built package (dist/, as users load it) in parallel, some with a small workspace cap (so
 * chunked), give results bit-identical to one serial run.
 */
import { Worker } from "node:worker_threads";
import { fileURLToPath, pathToFileURL } from "node:url";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { makeJobs, prng, runJob, type Job, type LossApi, type Result } from "./random-cases.js";

const DIST = fileURLToPath(new URL("../dist/index.js", import.meta.url));

/** The worker: loads dist/ as a user would, runs the jobs it is sent, returns the results. */
const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
import(workerData.url).then((api) => {
  if (workerData.workspaceBytes) api.configure({ workspaceBytes: workerData.workspaceBytes });
  parentPort.on("message", (jobs) => {
    const results = jobs.map((job) => {
      const loss = new api[job.loss](job.options);
      const r = loss.forwardBackward({ data: job.input.data.slice(), shape: job.input.shape }, job.target, { gradOutput: job.gradOutput });
      return { loss: r.loss, grad: r.grad };
    });
    parentPort.postMessage(results);
  });
  parentPort.postMessage("ready");
});
`;

function startWorker(workspaceBytes?: number): Promise<Worker> {
  const worker = new Worker(WORKER, { eval: true, workerData: { url: pathToFileURL(DIST).href, workspaceBytes } });
  return new Promise((resolve, reject) => {
    worker.once("message", () => resolve(worker));
    worker.once("error", reject);
  });
}

function runInWorker(worker: Worker, jobs: Job[]): Promise<Result[]> {
  return new Promise((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
    worker.postMessage(jobs);
  });
}

const bits = (v: number | Float32Array): Uint32Array => {
  const a = typeof v === "number" ? Float32Array.of(v) : v;
  // NaN payloads are not fixed by wasm: compare every NaN as the canonical one.
  return Uint32Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length), (u, i) => (Number.isNaN(a[i]) ? 0x7fc00000 : u));
};

function expectIdentical(actual: Result[], expected: Result[], what: string): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((r, i) => {
    expect(bits(r.loss), `${what}: job ${i} loss`).toEqual(bits(expected[i].loss));
    expect(bits(r.grad), `${what}: job ${i} grad`).toEqual(bits(expected[i].grad));
  });
}

describe.skipIf(!existsSync(DIST))("concurrency (dist/)", () => {
  const jobs = makeJobs(120, 42, 8000);

  it("interleaved calls on many instances equal a serial run", async () => {
    const api = (await import(pathToFileURL(DIST).href)) as LossApi;
    const serial = jobs.map((job) => runJob(api, job));
    // One instance per job, created up front, called in a shuffled order, twice.
    const instances = jobs.map((job) => new api[job.loss](job.options));
    const order = jobs.map((_, i) => i);
    const rand = prng(7);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const interleaved: Result[] = new Array(jobs.length);
    for (const round of [0, 1]) {
      for (const i of order) {
        const job = jobs[i];
        const r = instances[i].forwardBackward({ data: job.input.data.slice(), shape: job.input.shape }, job.target, { gradOutput: job.gradOutput });
        if (round === 1) interleaved[i] = r;
      }
    }
    expectIdentical(interleaved, serial, "interleaved");
    // Async callers interleaving at every await.
    const asyncResults = await Promise.all(
      jobs.map(async (job) => {
        await new Promise((r) => setTimeout(r, 0));
        return runJob(api, job);
      }),
    );
    expectIdentical(asyncResults, serial, "async");
  });

  it("worker_threads in parallel (default and small workspace caps) equal a serial run", async () => {
    const api = (await import(pathToFileURL(DIST).href)) as LossApi;
    const serial = jobs.map((job) => runJob(api, job));
    const workers = await Promise.all([startWorker(), startWorker(8192), startWorker(65536)]);
    try {
      // Every worker runs every job, all at the same time.
      const results = await Promise.all(workers.map((w) => runInWorker(w, jobs)));
      results.forEach((r, i) => expectIdentical(r, serial, `worker ${i}`));
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  });
});
