/**
 * The benchmark's outputs: bench/results.md (every number, the targets met or missed),
 * bench/chart.svg (speedup over pure JS), and the README's summary between the "bench"
 * markers. A --quick run writes build/bench-quick.md only: too short to publish.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { RUNNERS, SHAPES, LOSSES, type Runner } from "./cases.js";

export interface Result {
  loss: string;
  shape: number[];
  runner: Runner;
  elements: number;
  skipped?: string;
  /** Seconds per forward+backward call: the median call of the fastest round. */
  seconds?: number;
  samples?: number;
  elementsPerSecond?: number;
  /** Bytes allocated per steady-state call (JS heap and ArrayBuffers; tfjs: its tensors' peak). */
  allocated?: number;
  /** Growth of the backend's wasm memory during the measured calls (after warm-up). */
  memoryGrowth?: number;
  /** The loss of the last call, to check that all runners agree. */
  value?: number;
}

interface RunInfo {
  quick: boolean;
  seconds: number;
  machine: string;
  node: string;
  tfjs: string;
}

/**
 * A call "allocates no buffer" when what it allocates stays below this, or below 1% of the
 * input's bytes: what is left is bookkeeping the size of a few objects (the parsed
 * arguments, the `{ loss, grad }` result), collected young, and on the copying path a
 * typed-array view per copied chunk (a chunk copies up to 256 KiB; a view is about 60 bytes).
 */
export const NO_BUFFER_BYTES = 4096;
const noBuffer = (r: Result) => Number.isFinite(r.allocated) && r.allocated! < Math.max(NO_BUFFER_BYTES, 0.01 * 4 * r.elements);

const LARGE = [[1024, 1000], [1024, 32000], [8, 21, 128, 128]];
const key = (s: number[]) => s.join(",");
const fmtShape = (s: number[]) => `(${s.join(", ")})`;

interface Target {
  what: string;
  losses: string[];
  shapes: number[][];
  runner: Runner;
  min: number;
}

/** The performance issue's targets, as ratios over the pure-JS backend in this run. */
const TARGETS: Target[] = [
  { what: "cross-entropy and softmax focal, zero copy ≥ 10× pure JS", losses: ["CrossEntropyLoss", "FocalLoss"], shapes: [[1024, 1000], [1024, 32000]], runner: "simd zero-copy", min: 10 },
  { what: "cross-entropy and softmax focal, copying ≥ 6× pure JS", losses: ["CrossEntropyLoss", "FocalLoss"], shapes: [[1024, 1000], [1024, 32000]], runner: "simd", min: 6 },
  { what: "sigmoid focal, zero copy ≥ 10× pure JS", losses: ["SigmoidFocalLoss"], shapes: LARGE, runner: "simd zero-copy", min: 10 },
  { what: "sigmoid focal, copying ≥ 10× pure JS", losses: ["SigmoidFocalLoss"], shapes: LARGE, runner: "simd", min: 10 },
  { what: "segmentation (8, 21, 128, 128), CE and focal, zero copy ≥ 8× pure JS", losses: ["CrossEntropyLoss", "FocalLoss"], shapes: [[8, 21, 128, 128]], runner: "simd zero-copy", min: 8 },
  { what: "segmentation (8, 21, 128, 128), CE and focal, copying ≥ 8× pure JS", losses: ["CrossEntropyLoss", "FocalLoss"], shapes: [[8, 21, 128, 128]], runner: "simd", min: 8 },
  // NLL is left out of the two targets below: it reads one element per position and its
  // gradient is a fill of zeros, so every backend runs the same JS function on inputs
  // outside wasm memory (`WasmBackend.nllLoss`); its ratio is 1 up to the noise of the run.
  { what: "(32, 10), copying: not slower than pure JS (every loss but NLL)", losses: LOSSES.map((l) => l.name).filter((n) => n !== "NLLLoss"), shapes: [[32, 10]], runner: "simd", min: 1 },
  { what: "scalar wasm ≥ 2× pure JS on the large shapes (every loss but NLL)", losses: LOSSES.map((l) => l.name).filter((n) => n !== "NLLLoss"), shapes: LARGE, runner: "scalar", min: 2 },
];

function speedups(results: Result[]): Map<string, number> {
  const js = new Map<string, number>();
  for (const r of results) if (r.runner === "js" && r.elementsPerSecond) js.set(`${r.loss}|${key(r.shape)}`, r.elementsPerSecond);
  const out = new Map<string, number>();
  for (const r of results) {
    const base = js.get(`${r.loss}|${key(r.shape)}`);
    if (base && r.elementsPerSecond) out.set(`${r.loss}|${key(r.shape)}|${r.runner}`, r.elementsPerSecond / base);
  }
  return out;
}

function targetRows(results: Result[], speed: Map<string, number>): string[] {
  const rows = ["| target | worst case in this run | met |", "| --- | --- | :---: |"];
  for (const t of TARGETS) {
    let worst: { ratio: number; where: string } | undefined;
    for (const loss of t.losses) {
      for (const shape of t.shapes) {
        const ratio = speed.get(`${loss}|${key(shape)}|${t.runner}`);
        if (ratio === undefined) continue;
        if (!worst || ratio < worst.ratio) worst = { ratio, where: `${loss} ${fmtShape(shape)}` };
      }
    }
    rows.push(worst ? `| ${t.what} | ${worst.ratio.toFixed(1)}× (${worst.where}) | ${worst.ratio >= t.min ? "yes" : "**no**"} |` : `| ${t.what} | not measured | |`);
  }
  const own = results.filter((r) => !r.runner.startsWith("tfjs") && r.allocated !== undefined);
  const buffers = own.filter((r) => !noBuffer(r));
  const worstAlloc = own.reduce((m, r) => Math.max(m, Number.isFinite(r.allocated) ? r.allocated! : Infinity), 0);
  const grew = own.filter((r) => (r.memoryGrowth ?? 0) > 0);
  const where = buffers.slice(0, 3).map((r) => `${r.runner} ${r.loss} ${fmtShape(r.shape)}`).join(", ");
  rows.push(
    `| no backend of this package allocates a buffer per call (< ${NO_BUFFER_BYTES / 1024} KiB or 1% of the input), wasm memory never grows after warm-up | ${Number.isFinite(worstAlloc) ? bytes(worstAlloc) : "a collection in every window"} per call at most${buffers.length ? ` (over the bound: ${where})` : ""}; wasm memory grew in ${grew.length} of ${own.length} cases | ${buffers.length === 0 && grew.length === 0 ? "yes" : "**no**"} |`,
  );
  return rows;
}

const rate = (r: Result | undefined) => (!r ? "" : r.skipped ? "–" : `${(r.elementsPerSecond! / 1e6).toFixed(r.elementsPerSecond! < 1e7 ? 2 : 0)}`);
const bytes = (n: number) => (n < 1024 ? `${n.toFixed(0)} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`);

function lossTable(results: Result[], speed: Map<string, number>, loss: string): string[] {
  const find = (shape: number[], runner: Runner) => results.find((r) => r.loss === loss && key(r.shape) === key(shape) && r.runner === runner);
  const rows = [`| shape | ${RUNNERS.join(" | ")} |`, `| --- | ${RUNNERS.map(() => "---:").join(" | ")} |`];
  for (const shape of SHAPES) {
    if (!results.some((r) => r.loss === loss && key(r.shape) === key(shape))) continue;
    const cells = RUNNERS.map((runner) => {
      const r = find(shape, runner);
      const s = speed.get(`${loss}|${key(shape)}|${runner}`);
      return r?.skipped ? "–" : r ? `${rate(r)}${runner === "js" || s === undefined ? "" : ` (${s.toFixed(1)}×)`}` : "";
    });
    rows.push(`| ${fmtShape(shape)} | ${cells.join(" | ")} |`);
  }
  return rows;
}

function memoryTable(results: Result[]): string[] {
  const rows = [
    `| runner | allocated per call, worst case (shape) | wasm memory growth after warm-up |`,
    "| --- | ---: | ---: |",
  ];
  for (const runner of RUNNERS) {
    const rs = results.filter((r) => r.runner === runner && r.allocated !== undefined);
    if (!rs.length) continue;
    const size = (r: Result) => (Number.isFinite(r.allocated) ? r.allocated! : Infinity);
    const worst = rs.reduce((a, b) => (size(b) > size(a) ? b : a));
    const growth = runner.startsWith("tfjs") || runner === "js" ? "n/a" : bytes(rs.reduce((m, r) => Math.max(m, r.memoryGrowth ?? 0), 0));
    const amount = Number.isFinite(worst.allocated) ? bytes(worst.allocated!) : "a collection in every window";
    rows.push(`| ${runner} | ${amount} (${worst.loss} ${fmtShape(worst.shape)}) | ${growth} |`);
  }
  return rows;
}

/** The loss values of one case should agree across runners (same data, same definition). */
function disagreements(results: Result[]): string[] {
  const out: string[] = [];
  for (const loss of LOSSES) {
    for (const shape of SHAPES) {
      const rs = results.filter((r) => r.loss === loss.name && key(r.shape) === key(shape) && r.value !== undefined);
      const ref = rs.find((r) => r.runner === "js")?.value;
      if (ref === undefined) continue;
      for (const r of rs) {
        // tfjs's logLoss adds an epsilon of 1e-7 inside the logs: allow for it.
        if (Math.abs(r.value! - ref) > 1e-4 + 2e-3 * Math.abs(ref)) out.push(`${loss.name} ${fmtShape(shape)}: ${r.runner} loss ${r.value}, js ${ref}`);
      }
    }
  }
  return out;
}

/** Horizontal grouped bars: speedup over pure JS (log scale), one group per loss and shape. */
function chart(results: Result[], speed: Map<string, number>, info: RunInfo): string {
  const runners = RUNNERS.filter((r) => r !== "js");
  const colors: Record<string, string> = { "simd zero-copy": "#1b6ca8", simd: "#4aa3df", scalar: "#8cc084", "tfjs-wasm": "#e0a030", "tfjs-cpu": "#c0504d" };
  const groups: { label: string; values: (number | undefined)[] }[] = [];
  for (const loss of LOSSES) {
    for (const shape of SHAPES) {
      if (!results.some((r) => r.loss === loss.name && key(r.shape) === key(shape))) continue;
      groups.push({ label: `${loss.name} ${fmtShape(shape)}`, values: runners.map((r) => speed.get(`${loss.name}|${key(shape)}|${r}`)) });
    }
  }
  const bar = 7;
  const groupH = runners.length * bar + 10;
  const left = 250;
  const width = 760;
  const top = 50;
  const plotW = width - left - 30;
  const [lo, hi] = [0.01, 100];
  const x = (v: number) => left + ((Math.log10(Math.min(Math.max(v, lo), hi)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW;
  const height = top + groups.length * groupH + 40;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="14" font-weight="bold">fused-loss: forward+backward speed relative to pure JS (log scale; right of 1× is faster)</text>`,
    `<text x="10" y="34" fill="#555">${info.machine}, Node ${info.node}, tfjs ${info.tfjs}</text>`,
  ];
  for (const tick of [0.01, 0.1, 1, 10, 100]) {
    out.push(`<line x1="${x(tick)}" y1="${top - 6}" x2="${x(tick)}" y2="${height - 35}" stroke="${tick === 1 ? "#333" : "#ddd"}"/>`);
    out.push(`<text x="${x(tick)}" y="${height - 22}" text-anchor="middle">${tick}×</text>`);
  }
  groups.forEach((g, i) => {
    const y0 = top + i * groupH;
    out.push(`<text x="${left - 6}" y="${y0 + groupH / 2}" text-anchor="end" dominant-baseline="middle">${g.label}</text>`);
    g.values.forEach((v, j) => {
      if (v === undefined) return;
      const y = y0 + j * bar;
      out.push(`<rect x="${x(lo)}" y="${y}" width="${(x(v) - x(lo)).toFixed(1)}" height="${bar - 1}" fill="${colors[runners[j]]}"><title>${runners[j]}: ${v.toFixed(2)}×</title></rect>`);
    });
  });
  runners.forEach((r, j) => {
    const lx = 10 + j * 140;
    out.push(`<rect x="${lx}" y="${height - 14}" width="10" height="10" fill="${colors[r]}"/><text x="${lx + 14}" y="${height - 5}">${r}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

export function writeReport(results: Result[], info: RunInfo): void {
  const speed = speedups(results);
  const bad = disagreements(results);
  const when = new Date().toISOString().slice(0, 10);
  const md: string[] = [
    "# Benchmark results",
    "",
    `Forward+backward in one call, float32, ${info.quick ? "**quick run (short budgets, not for publishing)**" : "full run"} of \`npm run bench\` on ${info.machine}, Node ${info.node}, TensorFlow.js ${info.tfjs}, ${when}; ${info.seconds.toFixed(0)} s in all.`,
    "Millions of input elements per second (this package's backends timed in interleaved rounds: the median call of each backend's fastest round; tfjs: the median call of one round), in brackets the speedup over this package's pure-JS backend.",
    "`simd zero-copy`: input, gradient and element-wise targets allocated in wasm memory (`allocTensor`); `simd` and `scalar`: the",
    "ordinary copying API with a reused `gradInput`; `tfjs-*`: the same loss in TensorFlow.js (`tf.valueAndGrad`, the logits",
    "uploaded and the loss and gradient downloaded every step, labels uploaded once; tfjs has no focal loss, so its rows are",
    "the formulas in tfjs ops).",
    "",
    "## Targets",
    "",
    ...targetRows(results, speed),
    "",
  ];
  for (const loss of LOSSES) {
    if (!results.some((r) => r.loss === loss.name)) continue;
    md.push(`## ${loss.name}`, "", ...lossTable(results, speed, loss.name), "");
  }
  md.push("## Memory", "", ...memoryTable(results), "");
  md.push(
    "Allocated per call: JS heap and ArrayBuffer bytes over a window of steady-state calls after a forced collection, divided by",
    "the number of calls, the least of three windows (an allocation per call shows in each; the engine's one-off allocations,",
    "such as code it optimises during the first window, in one); a window in which a collection ran is measured again with",
    "fewer calls. For tfjs, `tf.profile`'s peak",
    `bytes of its tensors. Below ${NO_BUFFER_BYTES / 1024} KiB (or 1% of the input) it is bookkeeping: the parsed arguments and the \`{ loss, grad }\` result,`,
    "short-lived objects independent of the input's size, and on the copying path a typed-array view of about 60 bytes per",
    "copied chunk of up to 256 KiB (0.03% of the bytes copied); no buffer is allocated.",
    "",
  );
  if (bad.length) md.push("## Disagreements", "", ...bad.map((b) => `- ${b}`), "");
  const text = md.join("\n");
  if (bad.length) console.warn(`bench: runners disagree:\n  ${bad.join("\n  ")}`);
  if (info.quick) {
    mkdirSync("build", { recursive: true });
    writeFileSync("build/bench-quick.md", text);
    console.log("bench: wrote build/bench-quick.md (quick runs do not touch bench/ or README.md)");
    console.log(targetRows(results, speed).join("\n"));
    return;
  }
  writeFileSync("bench/results.md", text);
  writeFileSync("bench/chart.svg", chart(results, speed, info));
  const summary = [
    `Measured by \`npm run bench\` on ${info.machine}, Node ${info.node}, ${when} (every loss, shape and backend: [bench/results.md](bench/results.md)).`,
    "",
    ...targetRows(results, speed),
    "",
    "Cross-entropy, forward+backward, millions of elements per second (speedup over pure JS):",
    "",
    ...lossTable(results, speed, "CrossEntropyLoss"),
    "",
    "![speedup over pure JS, every loss and shape](bench/chart.svg)",
  ].join("\n");
  const start = "<!-- bench:start (npm run bench) -->";
  const end = "<!-- bench:end -->";
  const readme = readFileSync("README.md", "utf8");
  const i = readme.indexOf(start);
  const j = readme.indexOf(end);
  if (i < 0 || j < i) throw new Error(`README.md has no ${start} … ${end} section`);
  writeFileSync("README.md", readme.slice(0, i + start.length) + "\n" + summary + "\n" + readme.slice(j));
  console.log("bench: wrote bench/results.md, bench/chart.svg and README.md's summary");
}
