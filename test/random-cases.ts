/**
 * Random loss cases from a small description (`CeSpec`): shared by the property tests (which
 * draw specs with fast-check), the concurrency test and the soak script (which draw them
 * from a seeded generator). Building a case from a spec is deterministic.
 */
import { crossEntropyRef, type RefResult } from "./reference.js";

/** A small, fast, seedable PRNG (mulberry32): uniform in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values placed at random positions of the input: overflow-prone, infinite, NaN. */
export const SPECIAL_VALUES = [NaN, Infinity, -Infinity, 1e30, -1e30, 3e38, -3e38, 0, -0, 1e-30] as const;

export type Reduction = "none" | "mean" | "sum";

export interface CeSpec {
  shape: number[];
  seed: number;
  /** Logits are standard normal times this. */
  scale: number;
  /** [fraction of the input's length, index into SPECIAL_VALUES] */
  specials: [number, number][];
  targetKind: "index" | "prob";
  /** For index targets: which ignoreIndex, and the fraction of positions carrying it. */
  ignore: "default" | "in-range" | "minus-one";
  ignoreFraction: number;
  /** For probability targets: rows summing to 1, or arbitrary non-negative values. */
  normalized: boolean;
  weight: "none" | "positive" | "with-zeros" | "negative";
  labelSmoothing: number;
  reduction: Reduction;
  gradOutput: "default" | "number" | "array";
  /** Index targets' container. */
  container: "int32" | "bigint64" | "array" | "shaped-int32";
}

export interface CeCase {
  shape: number[];
  input: Float32Array;
  target: { kind: "index"; data: Int32Array } | { kind: "prob"; data: Float32Array };
  options: { weight?: Float32Array; ignoreIndex?: number; reduction: Reduction; labelSmoothing: number };
  gradOutput?: number | Float32Array;
  container: CeSpec["container"];
}

function normal(rand: () => number): number {
  // Box-Muller; 1 - rand() avoids log(0).
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

const classesOf = (shape: readonly number[]): number => (shape.length === 1 ? shape[0] : shape[1]);
/** Positions: the shape without its class axis (1 for an unbatched input). */
const positionsOf = (shape: readonly number[]): number =>
  shape.length === 1 ? 1 : shape.filter((_, i) => i !== 1).reduce((a, b) => a * b, 1);

export function buildCeCase(spec: CeSpec): CeCase {
  const rand = prng(spec.seed);
  const { shape } = spec;
  const n = shape.reduce((a, b) => a * b, 1);
  const C = classesOf(shape);
  const P = positionsOf(shape);
  const input = new Float32Array(n);
  for (let i = 0; i < n; i++) input[i] = normal(rand) * spec.scale;
  if (n > 0) for (const [f, v] of spec.specials) input[Math.min(n - 1, Math.floor(f * n))] = SPECIAL_VALUES[v];

  let ignoreIndex = -100;
  let target: CeCase["target"];
  if (spec.targetKind === "index") {
    if (spec.ignore === "in-range" && C > 0) ignoreIndex = Math.floor(rand() * C);
    if (spec.ignore === "minus-one") ignoreIndex = -1;
    const t = new Int32Array(P);
    for (let p = 0; p < P; p++) {
      // With C = 0 every target must be ignored (any class is out of bounds).
      t[p] = C === 0 || rand() < spec.ignoreFraction ? ignoreIndex : Math.floor(rand() * C);
    }
    target = { kind: "index", data: t };
  } else {
    if (spec.ignore === "minus-one") ignoreIndex = -1;
    const y = new Float32Array(n);
    for (let i = 0; i < n; i++) y[i] = rand();
    if (spec.normalized && C > 0) {
      // Rows along the class axis sum to 1.
      const inner = shape.length <= 2 ? 1 : shape.slice(2).reduce((a, b) => a * b, 1);
      const outer = shape.length === 1 ? 1 : shape[0];
      for (let o = 0; o < outer; o++) {
        for (let s = 0; s < inner; s++) {
          let sum = 0;
          for (let c = 0; c < C; c++) sum += y[(o * C + c) * inner + s];
          for (let c = 0; c < C; c++) y[(o * C + c) * inner + s] /= sum;
        }
      }
    }
    target = { kind: "prob", data: y };
  }

  let weight: Float32Array | undefined;
  if (spec.weight !== "none") {
    weight = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      weight[c] = 2 * rand();
      if (spec.weight === "with-zeros" && rand() < 0.3) weight[c] = 0;
      if (spec.weight === "negative" && rand() < 0.3) weight[c] = -weight[c];
    }
  }

  let gradOutput: CeCase["gradOutput"];
  if (spec.gradOutput === "number") gradOutput = Math.fround(normal(rand) * 2);
  if (spec.gradOutput === "array") {
    if (spec.reduction === "none") gradOutput = Float32Array.from({ length: P }, () => normal(rand));
    else gradOutput = Math.fround(normal(rand));
  }
  const options: CeCase["options"] = { reduction: spec.reduction, labelSmoothing: spec.labelSmoothing };
  if (weight) options.weight = weight;
  if (ignoreIndex !== -100) options.ignoreIndex = ignoreIndex;
  return { shape, input, target, options, gradOutput, container: spec.container };
}

/** The case's target in the API's form (index targets in the spec's container). */
export function apiTarget(c: CeCase): Float32Array | Int32Array | BigInt64Array | number[] | { data: Int32Array | Float32Array; shape: number[] } {
  const positionShape = c.shape.length === 1 ? [] : [c.shape[0], ...c.shape.slice(2)];
  if (c.target.kind === "prob") return { data: c.target.data, shape: c.shape };
  const t = c.target.data;
  switch (c.container) {
    case "bigint64":
      return BigInt64Array.from(t, (v) => BigInt(v));
    case "array":
      return Array.from(t);
    case "shaped-int32":
      return { data: t, shape: positionShape };
    default:
      return t;
  }
}

export function referenceFor(c: CeCase): RefResult {
  return crossEntropyRef({ data: c.input, shape: c.shape }, c.target, c.options, c.gradOutput);
}

/** A random spec from `rand`, with at most about `maxElements` input elements. */
export function randomCeSpec(rand: () => number, maxElements: number): CeSpec {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const rank = int(1, 4);
  const C = pick([0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 64, 67, 100, 1000, 4096]);
  let shape: number[];
  if (rank === 1) shape = [C];
  else if (rank === 2) shape = [int(0, 64), C];
  else if (rank === 3) shape = [int(0, 4), C, int(0, 67)];
  else shape = [int(0, 3), C, int(0, 9), int(0, 9)];
  // Shrink the batch until the input fits the budget.
  while (shape.length > 1 && shape[0] > 1 && shape.reduce((a, b) => a * b, 1) > maxElements) shape[0] = Math.ceil(shape[0] / 2);
  if (shape.reduce((a, b) => a * b, 1) > maxElements) shape = [2, Math.min(C, 64)];
  const targetKind = rand() < 0.3 ? "prob" : "index";
  return {
    shape,
    seed: int(0, 2 ** 31),
    scale: pick([0.1, 1, 5, 30]),
    specials: rand() < 0.15 ? [[rand(), int(0, SPECIAL_VALUES.length - 1)]] : [],
    targetKind,
    ignore: pick(["default", "in-range", "minus-one"] as const),
    ignoreFraction: pick([0, 0.1, 0.5]),
    normalized: rand() < 0.7,
    weight: pick(["none", "positive", "with-zeros", "negative"] as const),
    labelSmoothing: pick([0, 0, 0.1, 0.25, 1]),
    reduction: pick(["none", "mean", "sum"] as const),
    gradOutput: pick(["default", "number", "array"] as const),
    container: pick(["int32", "bigint64", "array", "shaped-int32"] as const),
  };
}

/** Jobs for every loss (the concurrency test and the soak script), as plain data a worker can receive. */
export type LossName = "CrossEntropyLoss" | "NLLLoss" | "FocalLoss" | "SigmoidFocalLoss" | "BCEWithLogitsLoss" | "BCELoss";
export interface Job {
  loss: LossName;
  options: Record<string, unknown>;
  input: { data: Float32Array; shape: number[] };
  target: unknown;
  gradOutput?: number | Float32Array;
}
export interface Result {
  loss: number | Float32Array;
  grad: Float32Array;
}

/** A mixed list of jobs over every loss (deterministic), inputs of at most about `maxElements`. */
export function makeJobs(count: number, seed: number, maxElements = 20_000, backends = ["simd", "scalar", "js"]): Job[] {
  const rand = prng(seed);
  const jobs: Job[] = [];
  for (let i = 0; i < count; i++) {
    const backend = backends[i % backends.length];
    const kind = i % 6;
    if (kind < 2) {
      const c = buildCeCase(randomCeSpec(rand, maxElements));
      jobs.push({ loss: "CrossEntropyLoss", options: { ...c.options, backend }, input: { data: c.input, shape: c.shape }, target: apiTarget(c), gradOutput: c.gradOutput });
      continue;
    }
    // The other losses: (n, C) inputs, class indices or per-element targets.
    const C = 2 + Math.floor(rand() * 40);
    const n = 1 + Math.floor(rand() * Math.min(400, Math.max(1, maxElements / C)));
    const logits = Float32Array.from({ length: n * C }, () => (rand() - 0.5) * 20);
    const classes = Int32Array.from({ length: n }, () => Math.floor(rand() * C));
    const soft = Float32Array.from({ length: n * C }, () => rand());
    const reduction = (["none", "mean", "sum"] as const)[i % 3];
    const elementwise = kind >= 4;
    const gradOutput = reduction === "none" ? Float32Array.from({ length: elementwise ? n * C : n }, () => rand() - 0.5) : 0.5;
    const input = { data: logits, shape: [n, C] };
    const options = { reduction, backend };
    if (kind === 2) jobs.push({ loss: i % 12 < 6 ? "NLLLoss" : "FocalLoss", options, input, target: classes, gradOutput });
    else if (kind === 3) jobs.push({ loss: "FocalLoss", options: { ...options, gamma: 1.5, ignoreIndex: 0 }, input, target: classes, gradOutput });
    else if (kind === 4) jobs.push({ loss: i % 12 < 6 ? "BCEWithLogitsLoss" : "SigmoidFocalLoss", options, input, target: { data: soft, shape: [n, C] }, gradOutput });
    else {
      const probabilities = soft.map((v) => v * 0.98 + 0.01);
      jobs.push({ loss: "BCELoss", options, input: { data: probabilities, shape: [n, C] }, target: { data: logits.map((v) => (v > 0 ? 1 : 0)), shape: [n, C] }, gradOutput });
    }
  }
  return jobs;
}

export type LossApi = Record<string, new (options: unknown) => { forwardBackward(i: unknown, t: unknown, o: unknown): Result }> & {
  configure(c: { workspaceBytes: number }): void;
};

export function runJob(api: LossApi, job: Job): Result {
  const loss = new api[job.loss](job.options);
  const r = loss.forwardBackward({ data: job.input.data.slice(), shape: job.input.shape }, job.target, { gradOutput: job.gradOutput });
  return { loss: r.loss, grad: r.grad };
}

