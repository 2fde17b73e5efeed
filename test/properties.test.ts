/**
 * Property tests: random shapes (0 and every length 1..67 on the class and the spatial axis,
 * for the SIMD tails), random options, extreme and non-finite values. Every backend must match
 * the independent float64 reference (test/reference.ts) within `1e-5 + 1e-4·|expected|` with
 * NaN/±Infinity in the same places; the SIMD and scalar builds must agree bit for bit; results
 * must not depend on the workspace cap (chunking).
 *
 * fast-check runs with a fixed seed so that CI is reproducible; set FUSED_LOSS_FC_SEED to explore.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import * as api from "../ts/index.js";
import { resolveBackend } from "../ts/backend.js";
import { WasmBackend } from "../ts/wasm/backend.js";
import { BACKENDS, expectClose, f32, loadFixtures, num, decodeOptions, withinTolerance, type FixtureCase } from "./helpers.js";
import { apiTarget, buildCeCase, prng, referenceFor, SPECIAL_VALUES, type CeCase, type CeSpec } from "./random-cases.js";
import {
  bceRef,
  bceWithLogitsRef,
  broadcastValues,
  crossEntropyRef,
  focalRef,
  nllRef,
  sigmoidFocalRef,
  withOverflow,
  type RefResult,
} from "./reference.js";

const SEED = Number(process.env.FUSED_LOSS_FC_SEED ?? 20240611);

interface Outcome {
  forward: Float32Array;
  loss: Float32Array;
  grad: Float32Array;
}

const asArray = (v: number | Float32Array): Float32Array => (typeof v === "number" ? Float32Array.of(v) : v);

/** Runs forward, then forwardBackward with the gradient in a new, a caller's or the input's buffer. */
function run(c: CeCase, backend: api.BackendName, gradInto: "new" | "caller" | "in-place"): Outcome {
  const loss = new api.CrossEntropyLoss({ ...c.options, backend });
  const input = { data: c.input.slice(), shape: c.shape };
  const forward = asArray(loss.forward(input, apiTarget(c)));
  expect(input.data, "forward must not modify the input").toEqual(c.input);
  const gradInput = gradInto === "in-place" ? input.data : gradInto === "caller" ? new Float32Array(c.input.length).fill(NaN) : undefined;
  const r = loss.forwardBackward(input, apiTarget(c), { gradOutput: c.gradOutput, gradInput });
  if (gradInput) expect(r.grad).toBe(gradInput);
  else expect(input.data, "forwardBackward must not modify the input").toEqual(c.input);
  return { forward, loss: asArray(r.loss), grad: r.grad };
}

const toF32 = (a: Float64Array): Float32Array => Float32Array.from(a);

/**
 * `actual` within the oracle tolerance of `expected` (PyTorch's float32 steps) element by
 * element, or of `exact` (float64 throughout) where only PyTorch's float32 intermediates
 * overflow: the kernels keep such intermediates in float64 (the JS backend all of them), a
 * documented deviation for logits within a factor ~10 of float32's range.
 */
function expectCloseEither(actual: Float32Array, expected: Float32Array, exact: Float32Array, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const ok = withinTolerance(actual[i], expected[i]) || (!Number.isFinite(expected[i]) && withinTolerance(actual[i], exact[i]));
    if (!ok) expect.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (float64 throughout: ${exact[i]})`);
  }
}

/** Every backend against the reference; the two wasm builds bit for bit. */
function checkCase(c: CeCase, gradInto: "new" | "caller" | "in-place" = "new"): void {
  const ref = referenceFor(c);
  const exact = withOverflow(false, () => referenceFor(c));
  const expectedLoss = toF32(ref.loss);
  const expectedGrad = toF32(ref.grad);
  const outcomes: Partial<Record<api.BackendName, Outcome>> = {};
  for (const backend of BACKENDS) {
    const o = run(c, backend, gradInto);
    outcomes[backend] = o;
    expectCloseEither(o.forward, expectedLoss, toF32(exact.loss), `${backend} forward loss`);
    expectCloseEither(o.loss, expectedLoss, toF32(exact.loss), `${backend} loss`);
    expectCloseEither(o.grad, expectedGrad, toF32(exact.grad), `${backend} grad`);
  }
  expectSameBits(outcomes.simd!, outcomes.scalar!);
}

/** Same float32 bits (any NaN equals any NaN: wasm does not fix NaN payloads). */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) if (ua[i] !== ub[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

function expectSameBits(a: Outcome, b: Outcome, what = "simd vs scalar"): void {
  expect(sameBits(a.forward, b.forward), `${what}: forward bits`).toBe(true);
  expect(sameBits(a.loss, b.loss), `${what}: loss bits`).toBe(true);
  expect(sameBits(a.grad, b.grad), `${what}: grad bits`).toBe(true);
}

const baseSpec: CeSpec = {
  shape: [3, 5],
  seed: 1,
  scale: 3,
  specials: [],
  targetKind: "index",
  ignore: "default",
  ignoreFraction: 0.2,
  normalized: true,
  weight: "none",
  labelSmoothing: 0,
  reduction: "mean",
  gradOutput: "default",
  container: "int32",
};

/** Option sets cycled through by the length sweeps. */
const VARIANTS: Partial<CeSpec>[] = [
  {},
  { weight: "positive", labelSmoothing: 0.1, reduction: "sum", gradOutput: "number" },
  { targetKind: "prob", reduction: "none", gradOutput: "array" },
  { ignore: "in-range", weight: "with-zeros", labelSmoothing: 0.3, reduction: "none", gradOutput: "array" },
  { targetKind: "prob", normalized: false, weight: "positive", labelSmoothing: 0.2, reduction: "mean", gradOutput: "number" },
  { specials: [[0.1, 0], [0.5, 1], [0.9, 2]], labelSmoothing: 0.1, reduction: "none" },
  { specials: [[0.3, 3], [0.6, 6]], weight: "negative", reduction: "sum" },
];

describe("the float64 reference matches PyTorch", () => {
  // The reference is only useful if it is PyTorch: check it on every fixture (non-finite cases included).
  const fixtures = loadFixtures("cross_entropy");
  it(`on all ${fixtures.cases.length} cross-entropy fixtures`, () => {
    for (const c of fixtures.cases) {
      const o = decodeOptions(c.options) as { weight?: number[] | { data: Float32Array } };
      const gradOutput = typeof c.gradOutput === "object" ? f32(c.gradOutput) : c.gradOutput === undefined ? undefined : num(c.gradOutput);
      const ref = crossEntropyRef(
        { data: f32(c.input), shape: c.input.shape },
        { kind: c.target.kind, data: c.target.data.map(num) },
        { ...(c.options as object), weight: Array.isArray(o.weight) ? o.weight : o.weight?.data },
        gradOutput,
      );
      const loss = typeof c.expected.loss === "object" ? c.expected.loss.data.map(num) : [num(c.expected.loss)];
      expectClose(toF32(ref.loss), loss, `${c.name} loss`);
      expectClose(toF32(ref.grad), f32(c.expected.grad), `${c.name} grad`);
    }
  });
});

/** An option array from a fixture (a list, or `{ shape, data }`) with its shape. */
function fixtureArray(v: unknown): { data: number[]; shape: number[] } | undefined {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return { data: v.map(num), shape: [v.length] };
  const t = v as { shape: number[]; data: (number | string)[] };
  return { data: t.data.map((x) => num(x as number)), shape: t.shape };
}

/** The reference for a fixture case of any loss, with the fixture's options. */
function fixtureReference(loss: string, c: FixtureCase): RefResult {
  const o = c.options as Record<string, unknown>;
  const input = { data: f32(c.input), shape: c.input.shape };
  const target = c.target.data.map(num);
  const gradOutput = typeof c.gradOutput === "object" ? f32(c.gradOutput) : c.gradOutput === undefined ? undefined : num(c.gradOutput);
  const reduction = (o.sizeAverage === undefined ? o.reduction : o.sizeAverage ? "mean" : "sum") as "none" | "mean" | "sum" | undefined;
  const perElement = (name: string) => {
    const a = fixtureArray(o[name]);
    return a && broadcastValues(a.data, a.shape, input.shape);
  };
  switch (loss) {
    case "nll":
      return nllRef(input, target, { weight: fixtureArray(o.weight)?.data, ignoreIndex: o.ignoreIndex as number, reduction }, gradOutput);
    case "focal": {
      const alpha = typeof o.alpha === "number" ? [o.alpha, 1 - o.alpha] : fixtureArray(o.alpha)?.data;
      const options = { gamma: o.gamma as number, alpha, weight: fixtureArray(o.weight)?.data, ignoreIndex: o.ignoreIndex as number, reduction, gradient: o.gradient as "full" };
      return focalRef(input, target, options, gradOutput);
    }
    case "sigmoid_focal":
      return sigmoidFocalRef(input, target, { alpha: o.alpha as number | null, gamma: o.gamma as number, reduction }, gradOutput);
    case "bce_with_logits":
      return bceWithLogitsRef(input, target, { weight: perElement("weight"), posWeight: perElement("posWeight"), reduction }, gradOutput);
    default:
      return bceRef(input, target, { weight: perElement("weight"), reduction }, gradOutput);
  }
}

describe("the float64 references of the other losses match PyTorch", () => {
  for (const file of ["nll", "focal", "sigmoid_focal", "bce_with_logits", "bce"]) {
    const fixtures = loadFixtures(file);
    // Deviation cases expect the package's documented limits, not PyTorch's NaN: the
    // reference is PyTorch's definition, so it is checked on the others.
    const cases = fixtures.cases.filter((c) => !c.deviation);
    it(`${file}: ${cases.length} fixtures`, () => {
      for (const c of cases) {
        const ref = fixtureReference(file, c);
        const loss = typeof c.expected.loss === "object" ? c.expected.loss.data.map(num) : [num(c.expected.loss)];
        expectClose(toF32(ref.loss), loss, `${c.name} loss`);
        expectClose(toF32(ref.grad), f32(c.expected.grad), `${c.name} grad`);
      }
    });
  }
});

describe("every class-axis length 1..67 (SIMD tails) on every backend", () => {
  for (let C = 1; C <= 67; C++) {
    it(`C = ${C}`, () => {
      VARIANTS.forEach((v, i) => checkCase(buildCeCase({ ...baseSpec, ...v, shape: [3, C], seed: C * 100 + i })));
      checkCase(buildCeCase({ ...baseSpec, shape: [C], seed: C }), "in-place");
    });
  }
});

describe("every spatial length 1..67 (SIMD tails) on every backend", () => {
  for (let S = 1; S <= 67; S++) {
    it(`S = ${S}`, () => {
      VARIANTS.forEach((v, i) => checkCase(buildCeCase({ ...baseSpec, ...v, shape: [2, 5, S], seed: S * 100 + i })));
      checkCase(buildCeCase({ ...baseSpec, ...VARIANTS[3], shape: [1, 3, S, 2], seed: S }), "caller");
    });
  }
});

const dim = (max: number) => fc.integer({ min: 0, max });

const specArb: fc.Arbitrary<CeSpec> = fc.record({
  shape: fc.oneof(
    dim(67).map((c) => [c]),
    fc.tuple(dim(6), dim(67)).map(([n, c]) => [n, c]),
    fc.tuple(dim(3), dim(12), dim(67)).map(([n, c, s]) => [n, c, s]),
    fc.tuple(dim(2), dim(6), dim(6), dim(9)).map(([n, c, a, b]) => [n, c, a, b]),
    // Classes across the kernel's block boundaries.
    fc.tuple(dim(2), fc.integer({ min: 60, max: 700 })).map(([n, c]) => [n, c]),
  ),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  scale: fc.constantFrom(0.1, 1, 5, 30, 1000),
  specials: fc.array(fc.tuple(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.integer({ min: 0, max: SPECIAL_VALUES.length - 1 })), {
    maxLength: 3,
  }),
  targetKind: fc.constantFrom("index", "prob"),
  ignore: fc.constantFrom("default", "in-range", "minus-one"),
  ignoreFraction: fc.constantFrom(0, 0.2, 0.6, 1),
  normalized: fc.boolean(),
  weight: fc.constantFrom("none", "positive", "with-zeros", "negative"),
  // (Not below 1e-6: the kernels take ε as float32, where a subnormal double ε is 0.)
  labelSmoothing: fc.oneof(fc.constantFrom(0, 1, 0.1), fc.double({ min: 1e-6, max: 1, noNaN: true })),
  reduction: fc.constantFrom("none", "mean", "sum"),
  gradOutput: fc.constantFrom("default", "number", "array"),
  container: fc.constantFrom("int32", "bigint64", "array", "shaped-int32"),
});

describe("random shapes, options and values", () => {
  it("every backend matches the float64 reference; SIMD and scalar bit-identical", () => {
    fc.assert(
      fc.property(specArb, fc.constantFrom("new", "caller", "in-place"), (spec, gradInto) => checkCase(buildCeCase(spec), gradInto as "new")),
      { seed: SEED, numRuns: 400 },
    );
  });
});

describe("determinism", () => {
  afterEach(() => {
    api.configure({ workspaceBytes: api.DEFAULT_WORKSPACE_BYTES });
  });

  /** A backend with a workspace of its own (on the same wasm instance), starting empty. */
  const freshBackend = (name: "simd" | "scalar") => new WasmBackend(name, (resolveBackend(name) as WasmBackend).exports);

  /** Cases whose chunking differs with the cap: rows, spatial splits inside one sample, tails. */
  const CHUNKED: [string, Partial<CeSpec>][] = [
    ["rows (64, 1000)", { shape: [64, 1000], weight: "positive", labelSmoothing: 0.1 }],
    ["rows, prob targets (40, 333)", { shape: [40, 333], targetKind: "prob", reduction: "none", gradOutput: "array" }],
    ["spatial (3, 7, 1001)", { shape: [3, 7, 1001], ignoreFraction: 0.3, reduction: "sum" }],
    ["spatial (2, 5, 40, 51), 'none'", { shape: [2, 5, 40, 51], reduction: "none", gradOutput: "array", labelSmoothing: 0.2 }],
    ["spatial prob (2, 4, 999)", { shape: [2, 4, 999], targetKind: "prob", weight: "positive" }],
    ["non-finite rows (16, 67)", { shape: [16, 67], specials: [[0.2, 0], [0.4, 1], [0.7, 2]], labelSmoothing: 0.1 }],
  ];
  // Caps: default (no chunking here), several samples per chunk, less than one sample (spatial
  // split inside a sample), less than one row (one row per call; the workspace exceeds the cap).
  const CAPS = [64 << 10, 6000, 1000, 64];

  for (const [name, partial] of CHUNKED) {
    it(`${name}: bit-identical for every workspace cap, on every run`, () => {
      const c = buildCeCase({ ...baseSpec, ...partial, seed: 7 });
      for (const backend of ["simd", "scalar"] as const) {
        const unchunked = run(c, backend, "new");
        expectSameBits(unchunked, run(c, backend, "new"), `${backend} second run`);
        for (const cap of CAPS) {
          api.configure({ workspaceBytes: cap });
          expectSameBits(unchunked, run(c, backend, "caller"), `${backend} cap ${cap}`);
          expectSameBits(unchunked, run(c, backend, "in-place"), `${backend} cap ${cap} in place`);
        }
        api.configure({ workspaceBytes: api.DEFAULT_WORKSPACE_BYTES });
      }
    });
  }

  it("wasm memory grows by the workspace only, which stays within the cap except for one row larger than it", () => {
    // A fresh instance (its own module state): the workspace starts empty.
    const b = freshBackend("simd");
    const initial = b.exports.memory.buffer.byteLength;
    api.configure({ workspaceBytes: 64 << 10 });
    const calls = (shape: number[], seed: number) => {
      const c = buildCeCase({ ...baseSpec, shape, seed, ignoreFraction: 0 });
      return b.crossEntropy({ layout: { outer: shape[0], classes: shape[1], inner: 1 }, input: c.input.slice(), target: { kind: "index", classes: c.target.data as Int32Array }, labelSmoothing: 0.1, upstream: 1, grad: new Float32Array(c.input.length) });
    };
    calls([50, 1000], 3);
    expect(b.workspace.bytes).toBe(64 << 10);
    expect(b.exports.memory.buffer.byteLength - initial).toBe(64 << 10);
    // One row of 40000 logits (160 KB) cannot be split: the workspace holds one row.
    calls([2, 40000], 4);
    const oneRow = Math.ceil((40000 * 4 + 4) / 65536) * 65536;
    expect(b.workspace.bytes).toBe(oneRow);
    expect(b.exports.memory.buffer.byteLength - initial, "grown in place, not twice").toBe(oneRow);
    for (let seed = 5; seed < 20; seed++) calls([50 + seed, 1000], seed);
    expect(b.exports.memory.buffer.byteLength - initial, "steady state: no growth").toBe(oneRow);
  });
});

type OtherLoss = "nll" | "focal" | "sigmoid_focal" | "bce_with_logits" | "bce";
interface OtherSpec {
  loss: OtherLoss;
  shape: number[];
  seed: number;
  scale: number;
  reduction: "none" | "mean" | "sum";
  weighted: boolean;
  ignore: boolean;
  gamma: number;
  alpha: boolean;
  detached: boolean;
  gradOutput: "default" | "number" | "array";
}

const OTHER_CTORS: Record<OtherLoss, new (o: Record<string, unknown>) => { forwardBackward(i: api.Tensor, t: unknown, o?: api.BackwardOptions): api.LossAndGrad; forward(i: api.Tensor, t: unknown): number | Float32Array }> = {
  nll: api.NLLLoss as never,
  focal: api.FocalLoss as never,
  sigmoid_focal: api.SigmoidFocalLoss as never,
  bce_with_logits: api.BCEWithLogitsLoss as never,
  bce: api.BCELoss as never,
};

/** A case of another loss: the API's options and target, and the reference's result. */
function buildOther(spec: OtherSpec): { input: Float32Array; target: unknown; options: Record<string, unknown>; gradOutput?: number | Float32Array; ref: RefResult } {
  const rand = prng(spec.seed);
  const { shape, loss, reduction } = spec;
  const n = shape.reduce((a, b) => a * b, 1);
  const classIndexed = loss === "nll" || loss === "focal";
  const C = shape.length === 1 ? shape[0] : shape[1];
  const last = shape[shape.length - 1];
  const input = Float32Array.from({ length: n }, () => (rand() - 0.5) * 2 * spec.scale);
  const perClass = (k: number) => Float32Array.from({ length: k }, () => 0.25 + 1.5 * rand());
  const options: Record<string, unknown> = { reduction };
  let target: Int32Array | Float32Array;
  let ref: RefResult;
  const positionsCount = !classIndexed ? n : shape.length === 1 ? 1 : shape[0] * shape.slice(2).reduce((a, b) => a * b, 1);
  let gradOutput: number | Float32Array | undefined;
  if (spec.gradOutput === "number") gradOutput = Math.fround(rand() * 4 - 2);
  if (spec.gradOutput === "array" && reduction === "none") gradOutput = Float32Array.from({ length: positionsCount }, () => rand() * 4 - 2);
  if (classIndexed) {
    const ignoreIndex = spec.ignore && C > 0 ? Math.floor(rand() * C) : -100;
    if (ignoreIndex !== -100) options.ignoreIndex = ignoreIndex;
    target = Int32Array.from({ length: positionsCount }, () => (C === 0 ? -100 : Math.floor(rand() * C)));
    const weight = spec.weighted ? perClass(C) : undefined;
    if (weight) options.weight = weight;
    if (loss === "nll") {
      const logp = spec.scale > 0 ? input.map((v) => Math.fround(-Math.abs(v))) : input;
      input.set(logp);
      ref = nllRef({ data: input, shape }, target, { weight, ignoreIndex, reduction }, gradOutput);
    } else {
      const alpha = spec.alpha ? perClass(C) : undefined;
      if (alpha) options.alpha = alpha;
      options.gamma = spec.gamma;
      options.gradient = spec.detached ? "detached" : "full";
      ref = focalRef({ data: input, shape }, target, { gamma: spec.gamma, alpha, weight, ignoreIndex, reduction, gradient: options.gradient as "full" }, gradOutput);
    }
  } else {
    target = Float32Array.from({ length: n }, () => (rand() < 0.3 ? Math.round(rand()) : rand()));
    // A weight along the last axis (PyTorch's broadcast of a 1-D weight).
    const weight = spec.weighted ? perClass(last) : undefined;
    const perElement = weight && broadcastValues(weight, [last], shape);
    if (weight) options.weight = weight;
    if (loss === "bce_with_logits") {
      const posWeight = spec.alpha ? perClass(last) : undefined;
      if (posWeight) options.posWeight = posWeight;
      ref = bceWithLogitsRef({ data: input, shape }, target, { weight: perElement, posWeight: posWeight && broadcastValues(posWeight, [last], shape), reduction }, gradOutput);
    } else if (loss === "bce") {
      input.set(input.map((v) => Math.fround(1 / (1 + Math.exp(-v)))));
      ref = bceRef({ data: input, shape }, target, { weight: perElement, reduction }, gradOutput);
    } else {
      delete options.weight;
      const alpha = spec.alpha ? Math.fround(rand()) : null;
      Object.assign(options, { alpha, gamma: spec.gamma });
      ref = sigmoidFocalRef({ data: input, shape }, target, { alpha, gamma: spec.gamma, reduction }, gradOutput);
    }
  }
  return { input, target: { data: target, shape: classIndexed ? (shape.length === 1 ? [] : [shape[0], ...shape.slice(2)]) : shape }, options, gradOutput, ref };
}

function checkOther(spec: OtherSpec): void {
  const c = buildOther(spec);
  const outcomes: Partial<Record<api.BackendName, Outcome>> = {};
  for (const backend of BACKENDS) {
    const loss = new OTHER_CTORS[spec.loss]({ ...c.options, backend });
    const input = { data: c.input.slice(), shape: spec.shape };
    const forward = asArray(loss.forward(input, c.target));
    const r = loss.forwardBackward(input, c.target, { gradOutput: c.gradOutput, gradInput: input.data });
    outcomes[backend] = { forward, loss: asArray(r.loss), grad: r.grad };
    expectClose(forward, toF32(c.ref.loss), `${spec.loss} ${backend} forward`);
    expectClose(asArray(r.loss), toF32(c.ref.loss), `${spec.loss} ${backend} loss`);
    expectClose(r.grad, toF32(c.ref.grad), `${spec.loss} ${backend} grad`);
  }
  expectSameBits(outcomes.simd!, outcomes.scalar!, `${spec.loss}: simd vs scalar`);
}

const OTHER_LOSSES: OtherLoss[] = ["nll", "focal", "sigmoid_focal", "bce_with_logits", "bce"];
const otherBase: Omit<OtherSpec, "loss" | "shape" | "seed"> = {
  scale: 4,
  reduction: "mean",
  weighted: true,
  ignore: true,
  gamma: 2,
  alpha: true,
  detached: false,
  gradOutput: "number",
};

describe("the other losses: every length 1..67 on the class and the spatial (or last) axis", () => {
  for (const loss of OTHER_LOSSES) {
    it(`${loss}`, () => {
      for (let k = 1; k <= 67; k++) {
        const reduction = (["none", "mean", "sum"] as const)[k % 3];
        checkOther({ ...otherBase, loss, reduction, gradOutput: "array", shape: [3, k], seed: k, gamma: [0, 1, 2, 3.5][k % 4], detached: k % 5 === 0 });
        checkOther({ ...otherBase, loss, reduction, shape: [2, 4, k], seed: 100 + k, weighted: k % 2 === 0, alpha: k % 3 === 0 });
      }
    });
  }
});

const otherSpecArb: fc.Arbitrary<OtherSpec> = fc.record({
  loss: fc.constantFrom(...OTHER_LOSSES),
  shape: fc.oneof(
    dim(40).map((c) => [c]),
    fc.tuple(dim(6), dim(40)).map(([n, c]) => [n, c]),
    fc.tuple(dim(3), dim(9), dim(40)).map(([n, c, s]) => [n, c, s]),
    fc.tuple(dim(2), dim(5), dim(6), dim(7)).map(([n, c, a, b]) => [n, c, a, b]),
  ),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  // Logits up to ±30 (BCE's sigmoid saturates); γ < 1 only away from p_t → 1 (a documented deviation).
  scale: fc.constantFrom(0.5, 4, 30),
  reduction: fc.constantFrom("none", "mean", "sum"),
  weighted: fc.boolean(),
  ignore: fc.boolean(),
  gamma: fc.constantFrom(0, 1, 2, 3.5),
  alpha: fc.boolean(),
  detached: fc.boolean(),
  gradOutput: fc.constantFrom("default", "number", "array"),
});

describe("the other losses: random shapes and options", () => {
  it("every backend matches the float64 reference; SIMD and scalar bit-identical", () => {
    fc.assert(fc.property(otherSpecArb, checkOther), { seed: SEED, numRuns: 300 });
  });
});

describe("the other losses: bit-identical for every workspace cap", () => {
  afterEach(() => {
    api.configure({ workspaceBytes: api.DEFAULT_WORKSPACE_BYTES });
  });
  const CASES: [OtherLoss, number[]][] = [
    ["focal", [3, 7, 1001]],
    ["nll", [2, 5, 40, 51]],
    ["focal", [64, 333]],
    ["bce_with_logits", [37, 101]],
    ["sigmoid_focal", [5, 999]],
    ["bce", [3, 7, 1001]],
  ];
  for (const [loss, shape] of CASES) {
    it(`${loss} ${JSON.stringify(shape)}`, () => {
      const c = buildOther({ ...otherBase, loss, shape, seed: 11, reduction: "none", gradOutput: "array" });
      const run = (backend: "simd" | "scalar"): Outcome => {
        const l = new OTHER_CTORS[loss]({ ...c.options, backend });
        const input = { data: c.input.slice(), shape };
        const r = l.forwardBackward(input, c.target, { gradOutput: c.gradOutput });
        return { forward: asArray(l.forward(input, c.target)), loss: asArray(r.loss), grad: r.grad };
      };
      for (const backend of ["simd", "scalar"] as const) {
        const unchunked = run(backend);
        for (const cap of [6000, 1000, 64]) {
          api.configure({ workspaceBytes: cap });
          expectSameBits(unchunked, run(backend), `${loss} ${backend} cap ${cap}`);
        }
        api.configure({ workspaceBytes: api.DEFAULT_WORKSPACE_BYTES });
      }
    });
  }
});
