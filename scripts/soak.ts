/**
 * `npm run soak`: the long reliability run (not part of `npm test`).
 *
 * 1. At least 100,000 calls of mixed sizes and options over every loss and backend, with a
 *    spot check against the float64 reference every 500th cross-entropy call. After a warm-up
 *    (the largest job of each kind once per backend) wasm memory must never grow and the
 *    workspace must stay within the cap; prints the peak.
 * 2. A (4096, 32000) cross-entropy (524 MB of logits) with the gradient written into the
 *    caller's buffer: the workspace stays within the documented cap, wasm memory grows by at
 *    most the cap, and sampled rows of the gradient (and the loss) match the float64 reference.
 *
 * Exits non-zero on any failure. SOAK_CALLS overrides the number of calls.
 */
import * as api from "../ts/index.js";
import { resolveBackend } from "../ts/backend.js";
import type { WasmBackend } from "../ts/wasm/backend.js";
import { apiTarget, buildCeCase, makeJobs, prng, randomCeSpec, runJob, type Job, type LossApi } from "../test/random-cases.js";
import { crossEntropyRef, type RefTarget } from "../test/reference.js";

const CALLS = Number(process.env.SOAK_CALLS ?? 100_000);
const MiB = 1 << 20;
const fmt = (bytes: number): string => `${(bytes / MiB).toFixed(2)} MiB`;
const wasm = (name: "simd" | "scalar") => resolveBackend(name) as WasmBackend;
const wasmState = () =>
  (["simd", "scalar"] as const).map((n) => ({ name: n, memory: wasm(n).exports.memory.buffer.byteLength, workspace: wasm(n).workspace.bytes }));

let failures = 0;
function check(ok: boolean, what: string): void {
  if (!ok) {
    failures++;
    console.error(`FAIL: ${what}`);
  }
}

/** Within the oracle tolerance, NaN/±Infinity in the same places. */
function close(actual: number, expected: number): boolean {
  const e = Math.fround(expected);
  if (!Number.isFinite(e)) return Object.is(actual, e) || (Number.isNaN(actual) && Number.isNaN(e));
  return Math.abs(actual - e) <= 1e-5 + 1e-4 * Math.abs(e);
}

function soak(): void {
  const cap = api.getConfig().workspaceBytes;
  // A pool of jobs reused round-robin (generating 100,000 inputs would dominate the time).
  // Mostly small and medium inputs of every loss, and some large cross-entropy inputs on wasm
  // (a vocabulary row, a segmentation batch: 0.2 to 5.5 MB).
  const pool = [...makeJobs(3000, 1234, 40_000), ...largeJobs()];
  const lossApi = api as unknown as LossApi;
  // Warm-up: every job once, so the workspace reaches its largest size.
  for (const job of pool) runJob(lossApi, job);
  const base = wasmState();
  console.log(`soak: ${CALLS} calls over a pool of ${pool.length} jobs (6 losses, 3 backends); cap ${fmt(cap)}`);
  for (const s of base) console.log(`  after warm-up: ${s.name} wasm memory ${fmt(s.memory)}, workspace ${fmt(s.workspace)}`);
  const peak = Object.fromEntries(base.map((s) => [s.name, s.memory]));
  const started = performance.now();
  let checked = 0;
  for (let i = 0; i < CALLS; i++) {
    const job = pool[i % pool.length];
    const r = runJob(lossApi, job);
    if (job.loss === "CrossEntropyLoss" && i % 101 === 0) {
      const ref = crossEntropyRef(job.input, refTarget(job.target), job.options as object, job.gradOutput);
      const loss = typeof r.loss === "number" ? [r.loss] : Array.from(r.loss);
      check(loss.every((v, k) => close(v, ref.loss[k])), `call ${i}: loss differs from the reference`);
      check(r.grad.every((v, k) => close(v, ref.grad[k])), `call ${i}: gradient differs from the reference`);
      checked++;
    }
    if (i % 1000 === 999) {
      for (const s of wasmState()) {
        peak[s.name] = Math.max(peak[s.name], s.memory);
        check(s.memory === base.find((b) => b.name === s.name)!.memory, `call ${i + 1}: ${s.name} wasm memory grew to ${fmt(s.memory)}`);
        check(s.workspace <= cap, `call ${i + 1}: ${s.name} workspace ${fmt(s.workspace)} above the cap`);
      }
    }
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`  ${CALLS} calls in ${seconds.toFixed(1)} s (${Math.round(CALLS / seconds)} calls/s), ${checked} checked against the float64 reference`);
  for (const s of wasmState()) console.log(`  peak: ${s.name} wasm memory ${fmt(peak[s.name])} (after warm-up ${fmt(base.find((b) => b.name === s.name)!.memory)}), workspace ${fmt(s.workspace)}`);
  console.log(`  JS heap used ${fmt(process.memoryUsage().heapUsed)}, RSS ${fmt(process.memoryUsage().rss)}`);
}

function largeJobs(): Job[] {
  const rand = prng(5);
  const shapes = [[256, 4096], [16, 21, 64, 64], [1, 50257], [512, 1000], [4, 3, 100, 100]];
  return shapes.flatMap((shape) =>
    (["simd", "scalar"] as const).map((backend) => {
      const c = buildCeCase({ ...randomCeSpec(rand, 1), shape });
      return { loss: "CrossEntropyLoss" as const, options: { ...c.options, backend }, input: { data: c.input, shape }, target: apiTarget(c), gradOutput: c.gradOutput };
    }),
  );
}

/** A cross-entropy job's target as the reference takes it (the API's forms unwrapped). */
function refTarget(target: unknown): RefTarget {
  const data = (ArrayBuffer.isView(target) || Array.isArray(target) ? target : (target as { data: unknown }).data) as ArrayLike<number> | BigInt64Array;
  if (data instanceof Float32Array) return { kind: "prob", data };
  return { kind: "index", data: data instanceof BigInt64Array ? Array.from(data, Number) : data };
}

function bigCase(): void {
  const N = 4096;
  const C = 32000;
  const cap = api.getConfig().workspaceBytes;
  console.log(`\n(${N}, ${C}) cross-entropy: ${fmt(N * C * 4)} of logits, gradient into the caller's buffer`);
  const input = new Float32Array(N * C);
  let seed = 99;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
  for (let i = 0; i < input.length; i++) input[i] = (rand() - 0.5) * 8;
  const target = Int32Array.from({ length: N }, (_, i) => (i % 97 === 5 ? -100 : Math.floor(rand() * C)));
  const weight = Float32Array.from({ length: C }, () => 0.5 + rand());
  const options = { weight, labelSmoothing: 0.1, reduction: "mean" as const };
  const grad = new Float32Array(N * C);

  for (const backend of ["simd", "scalar"] as const) {
    const b = wasm(backend);
    const before = b.exports.memory.buffer.byteLength;
    const loss = new api.CrossEntropyLoss({ ...options, backend });
    const started = performance.now();
    const r = loss.forwardBackward({ data: input, shape: [N, C] }, target, { gradInput: grad });
    const seconds = (performance.now() - started) / 1000;
    const after = b.exports.memory.buffer.byteLength;
    console.log(
      `  ${backend}: ${seconds.toFixed(2)} s, loss ${r.loss}; wasm memory ${fmt(before)} -> ${fmt(after)} (+${fmt(after - before)}), workspace ${fmt(b.workspace.bytes)} (cap ${fmt(cap)})`,
    );
    check(r.grad === grad, "the gradient is written into the caller's buffer");
    check(b.workspace.bytes <= cap, `${backend}: workspace ${fmt(b.workspace.bytes)} above the cap`);
    check(after - before <= cap, `${backend}: wasm memory grew by more than the cap`);

    // Spot check: sampled rows against the reference. A row's gradient under 'mean' is its
    // 'sum' gradient times gradOutput / Σ weight[target] over the kept rows.
    let weightSum = 0;
    for (const t of target) if (t !== -100) weightSum += weight[t];
    const rows = [0, 1, 5, 2047, 2048, 4095, 1000 + Math.floor(rand() * 2000)];
    let worst = 0;
    for (const row of rows) {
      const x = input.subarray(row * C, (row + 1) * C);
      const ref = crossEntropyRef({ data: x, shape: [1, C] }, { kind: "index", data: [target[row]] }, { ...options, reduction: "sum" }, Math.fround(1 / weightSum));
      for (let c = 0; c < C; c++) {
        const actual = grad[row * C + c];
        const e = Math.fround(ref.grad[c]);
        worst = Math.max(worst, Math.abs(actual - e) / (1e-5 + 1e-4 * Math.abs(e)));
        if (!close(actual, ref.grad[c])) {
          check(false, `${backend}: grad[${row}, ${c}] = ${actual}, reference ${ref.grad[c]}`);
          break;
        }
      }
    }
    // The loss: Σ of each row's 'sum' loss over chunks of rows, divided by the weight sum.
    let total = 0;
    for (let r0 = 0; r0 < N; r0 += 256) {
      const rowsHere = Math.min(256, N - r0);
      const ref = crossEntropyRef({ data: input.subarray(r0 * C, (r0 + rowsHere) * C), shape: [rowsHere, C] }, { kind: "index", data: target.subarray(r0, r0 + rowsHere) }, { ...options, reduction: "sum" });
      total += ref.loss[0];
    }
    check(close(r.loss as number, total / weightSum), `${backend}: loss ${r.loss}, reference ${total / weightSum}`);
    console.log(`  ${backend}: rows ${rows.join(", ")} of the gradient and the loss (${total / weightSum}) match the float64 reference; worst error ${(worst * 100).toPrecision(2)}% of the tolerance`);
  }
}

soak();
bigCase();
if (failures > 0) {
  console.error(`soak: ${failures} failure(s)`);
  process.exit(1);
}
console.log("soak: passed");
