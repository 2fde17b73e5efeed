/**
 * `npm run bench`: every loss × shape × backend, forward+backward in one call, with tinybench.
 * Reports elements per second, the speedup over this package's pure-JS backend, and what each
 * backend allocates per call in steady state; writes bench/results.md, bench/chart.svg and the
 * README's summary. `--quick` (under a minute) runs every case briefly and writes
 * build/bench-quick.md only.
 *
 *   npm run bench -- [--quick] [--only CrossEntropyLoss,FocalLoss]
 *
 * It times the built package (dist/): scripts/bench.sh bundles this harness with esbuild,
 * dist/ left external, rather than running it through tsx, whose transform keeps function
 * names (a helper call each time a closure is made) and would tax the small shapes.
 */
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { createRequire } from "node:module";
import { cpus } from "node:os";
import { dirname, sep } from "node:path";
import { PerformanceObserver } from "node:perf_hooks";
import { Bench } from "tinybench";
import { memoryStats, type BackendName } from "../dist/index.js";
import { LOSSES, RUNNERS, SHAPES, elementsOf, makeData, prepareFused, prepareTf, type Data, type LossCase, type Prepared, type Runner } from "./cases.js";
import { writeReport, type Result } from "./report.js";

const quick = process.argv.includes("--quick");
const onlyArg = process.argv.indexOf("--only");
const only = onlyArg > 0 ? new Set(process.argv[onlyArg + 1].split(",")) : undefined;
const exposedGc = (globalThis as { gc?: () => void }).gc;
if (!exposedGc) throw new Error("bench: run node with --expose-gc (npm run bench does)");
const gc: () => void = exposedGc;

const require = createRequire(import.meta.url);
setWasmPaths(dirname(require.resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm")) + sep);

/** Budgets per measured task: a minimum time and a minimum number of samples. */
const BUDGET = quick ? { time: 25, warmupTime: 5, minSamples: 2 } : { time: 500, warmupTime: 150, minSamples: 5 };
/** --quick leaves out the 131 MB shape, whose inputs alone take seconds to make and run. */
const QUICK_MAX_ELEMENTS = 3_000_000;

/** tfjs is slow on large inputs: skip where one step would take seconds (noted in the report). */
function skipReason(runner: Runner, elements: number): string | undefined {
  if (runner === "tfjs-cpu" && elements > (quick ? 30_000 : 4_000_000)) return "skipped (several seconds per step)";
  if (runner === "tfjs-wasm" && quick && elements > 30_000) return "skipped in --quick";
  // Its intermediates for 32 M elements overflow tfjs-backend-wasm's heap (memory access out
  // of bounds inside tfjs, in the element-wise losses).
  if (runner === "tfjs-wasm" && elements > 4_000_000) return "skipped (tfjs-backend-wasm runs out of heap)";
  return undefined;
}

const isTfjs = (runner: Runner) => runner.startsWith("tfjs");
/** This package's backend behind a runner (tfjs runners have none). */
const backendOf = (runner: Runner): BackendName | undefined =>
  isTfjs(runner) ? undefined : runner === "scalar" ? "scalar" : runner === "js" ? "js" : "simd";

const wasmMemory = (runner: Runner) => {
  const backend = backendOf(runner);
  return backend === "js" || backend === undefined ? 0 : (memoryStats().find((s) => s.backend === backend)?.memoryBytes ?? 0);
};

/** Start times of garbage collections (entries arrive asynchronously, hence times, not counts). */
const gcTimes: number[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcTimes.push(e.startTime);
}).observe({ entryTypes: ["gc"] });
const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

/**
 * Bytes of JS heap and ArrayBuffers one steady-state call allocates: the least of `WINDOWS`
 * windows of `calls` calls, each after a forced collection. A window in which a collection ran
 * is measured again with fewer calls (the collection would hide allocations). The least, because
 * a per-call allocation shows in every window, while the engine's own one-off allocations
 * (optimised code and its metadata, compiled concurrently with the first windows) land in one.
 */
const WINDOWS = 3;
async function allocatedPerCall(p: Prepared, calls: number): Promise<number> {
  let least = NaN;
  for (let w = 0; w < WINDOWS; w++) {
    const bytes = await allocatedInWindow(p, calls);
    if (Number.isNaN(least) || bytes < least) least = bytes;
  }
  return least;
}

async function allocatedInWindow(p: Prepared, calls: number): Promise<number> {
  for (let attempt = 0; attempt < 4; attempt++, calls = Math.max(1, calls >> 2)) {
    gc();
    await settle();
    const t0 = performance.now();
    const m0 = process.memoryUsage();
    for (let i = 0; i < calls; i++) p.step();
    const m1 = process.memoryUsage();
    const t1 = performance.now();
    await settle();
    if (!gcTimes.some((t) => t >= t0 && t <= t1)) return Math.max(0, m1.heapUsed + m1.arrayBuffers - m0.heapUsed - m0.arrayBuffers) / calls;
  }
  return NaN;
}

interface Measured {
  seconds: number;
  samples: number;
  elementsPerSecond: number;
  allocated: number;
  memoryGrowth: number;
}

/**
 * The package's own backends are timed in interleaved rounds (each round runs every backend
 * for its share of the budget, in a rotated order), and each backend's figure is its fastest
 * round (the median call of the round): a slow stretch of the shared machine, which slows
 * the fast SIMD code more than pure JS (the two cores share their caches and memory with
 * other tenants), then has to last the whole case to change a ratio. The same rule for every
 * backend. tfjs runs after them, in one round.
 */
const ROUNDS = quick ? 1 : 8;

interface Timed {
  runner: Runner;
  p: Prepared;
  /** Median call of each round, in ms. */
  roundMedians: number[];
  /** Calls timed, over all rounds. */
  samples: number;
  iterations: number;
  warmupIterations: number;
  memoryBefore: number;
}

function timed(runner: Runner, p: Prepared): Timed {
  // One probe call sizes the sample count so slow cases still finish.
  const t0 = performance.now();
  p.step();
  const probe = performance.now() - t0;
  const iterations = Math.max(BUDGET.minSamples, Math.min(64, Math.ceil(BUDGET.time / Math.max(probe, 1e-3))));
  return { runner, p, roundMedians: [], samples: 0, iterations, warmupIterations: probe > 200 || quick ? 1 : 8, memoryBefore: 0 };
}

/**
 * Runs `ts` in `rounds` rounds, each in a rotated order. Wasm memory is read after every probe:
 * the SIMD runners share one instance, whose workspace the first copying call sizes.
 */
async function runRounds(ts: Timed[], rounds: number): Promise<void> {
  for (const t of ts) t.memoryBefore = wasmMemory(t.runner);
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < ts.length; k++) await runRound(ts[(k + round) % ts.length], rounds, round === 0);
  }
}

async function runRound(t: Timed, rounds: number, first: boolean): Promise<void> {
  const bench = new Bench({
    time: BUDGET.time / rounds,
    iterations: Math.ceil(t.iterations / rounds),
    warmup: first,
    warmupTime: BUDGET.warmupTime,
    warmupIterations: t.warmupIterations,
    throws: true,
  });
  bench.add(t.runner, () => t.p.step());
  await bench.run();
  const latencies = bench.tasks[0].result!.latency.samples;
  t.roundMedians.push(median(latencies));
  t.samples += latencies.length;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function finish(t: Timed, elements: number): Promise<Measured> {
  const memoryGrowth = wasmMemory(t.runner) - t.memoryBefore;
  const seconds = Math.min(...t.roundMedians) / 1000;
  let allocated: number;
  if (isTfjs(t.runner)) {
    // tfjs allocates its tensors in its backend's memory: tf.profile counts them.
    const info = await tf.profile(() => t.p.step());
    allocated = info.peakBytes;
  } else {
    allocated = await allocatedPerCall(t.p, Math.max(2, Math.min(2000, Math.ceil((quick ? 0.01 : 0.1) / seconds))));
  }
  return { seconds, samples: t.samples, elementsPerSecond: elements / seconds, allocated, memoryGrowth };
}

/** Times `runners` on one (loss, shape): the package's backends interleaved, then tfjs's. */
async function measureCase(loss: LossCase, data: Data, runners: Runner[], elements: number): Promise<Map<Runner, Measured & { value: number }>> {
  const out = new Map<Runner, Measured & { value: number }>();
  const ours: Timed[] = [];
  try {
    for (const runner of runners.filter((r) => !isTfjs(r))) {
      ours.push(timed(runner, prepareFused(loss, data, backendOf(runner)!, runner === "simd zero-copy")));
    }
    await runRounds(ours, ROUNDS);
    for (const t of ours) out.set(t.runner, { ...(await finish(t, elements)), value: t.p.loss() });
  } finally {
    for (const t of ours) t.p.dispose();
  }
  for (const runner of runners.filter(isTfjs)) {
    await tf.setBackend(runner === "tfjs-wasm" ? "wasm" : "cpu");
    await tf.ready();
    const p = prepareTf(tf, loss, data);
    try {
      const t = timed(runner, p);
      await runRounds([t], 1);
      out.set(runner, { ...(await finish(t, elements)), value: p.loss() });
    } finally {
      p.dispose();
    }
  }
  return out;
}

async function main(): Promise<void> {
  const results: Result[] = [];
  const started = performance.now();
  console.log(`bench: ${quick ? "quick" : "full"} run on ${cpus().length}× ${cpus()[0]?.model ?? "?"}, Node ${process.version}`);
  for (const loss of LOSSES) {
    if (only && !only.has(loss.name)) continue;
    for (const shape of SHAPES) {
      const elements = elementsOf(shape);
      if (quick && elements > QUICK_MAX_ELEMENTS) continue;
      const data = makeData(loss, shape, 1234 + elements);
      const line: string[] = [];
      const runners: Runner[] = [];
      for (const runner of RUNNERS) {
        const skip = skipReason(runner, elements);
        if (skip) results.push({ loss: loss.name, shape, runner, elements, skipped: skip });
        else runners.push(runner);
      }
      const measured = await measureCase(loss, data, runners, elements);
      for (const runner of runners) {
        const m = measured.get(runner)!;
        results.push({ loss: loss.name, shape, runner, elements, ...m });
        line.push(`${runner} ${(m.elementsPerSecond / 1e6).toFixed(1)}M/s`);
      }
      console.log(`  ${loss.name} (${shape.join(", ")}): ${line.join(", ")}`);
      gc();
    }
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`bench: done in ${seconds.toFixed(0)} s`);
  writeReport(results, { quick, seconds, machine: `${cpus().length}× ${cpus()[0]?.model ?? "?"}`, node: process.version, tfjs: tf.version.tfjs });
}

await main();
