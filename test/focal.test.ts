/**
 * The focal-loss family through the public API, on every backend: gradients against central
 * differences of float64 references written from PyTorch's / torchvision's definitions (not
 * from the package's closed forms), including near saturation with γ < 1; FocalLoss with
 * γ = 0 is CrossEntropyLoss; options, errors, broadcasting, chunking and SIMD = scalar bits.
 */
import { afterEach, describe, expect, it } from "vitest";
import * as api from "../ts/index.js";
import { BACKENDS, expectClose } from "./helpers.js";

type Reduction = "none" | "mean" | "sum";
const REDUCTIONS: Reduction[] = ["none", "mean", "sum"];

/** mulberry32: deterministic inputs without a dependency. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r());
}

const randn = (r: () => number, n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => normal(r) * scale);
const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

// ---------------------------------------------------------------------------------------------
// float64 references, from the definitions as PyTorch / torchvision / the module write them
// ---------------------------------------------------------------------------------------------

interface ClassDims {
  outer: number;
  classes: number;
  inner: number;
}

function classDims(shape: readonly number[]): ClassDims {
  if (shape.length === 1) return { outer: 1, classes: shape[0], inner: 1 };
  return { outer: shape[0], classes: shape[1], inner: product(shape.slice(2)) };
}

/** log_softmax at the target and `1 - p_t = Σ_{c≠t} p_c` of one position. */
function logSoftmaxAt(x: ArrayLike<number>, base: number, stride: number, C: number, t: number): { l: number; q: number } {
  let m = -Infinity;
  for (let c = 0; c < C; c++) m = Math.max(m, x[base + c * stride]);
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(x[base + c * stride] - m);
  const lse = m + Math.log(s);
  let q = 0;
  for (let c = 0; c < C; c++) if (c !== t) q += Math.exp(x[base + c * stride] - lse);
  return { l: x[base + t * stride] - lse, q };
}

interface FocalRefOptions {
  gamma: number;
  alpha?: number[];
  weight?: number[];
  ignoreIndex: number;
}

/**
 * The module's per-position loss `-alpha[t]·weight[t]·(1 - p_t)^γ·log p_t` (0 when ignored);
 * `frozenQ` fixes `1 - p_t` per position (the detached surrogate, whose derivative is the
 * 'detached' gradient).
 */
function focalRef(x: ArrayLike<number>, shape: readonly number[], target: number[], o: FocalRefOptions, frozenQ?: number[]): number[] {
  const d = classDims(shape);
  const out: number[] = [];
  for (let n = 0; n < d.outer; n++) {
    for (let s = 0; s < d.inner; s++) {
      const pos = n * d.inner + s;
      const t = target[pos];
      if (t === o.ignoreIndex) {
        out.push(0);
        continue;
      }
      const { l, q } = logSoftmaxAt(x, n * d.classes * d.inner + s, d.inner, d.classes, t);
      const c = (o.alpha ? o.alpha[t] : 1) * (o.weight ? o.weight[t] : 1);
      out.push(-c * Math.pow(frozenQ ? frozenQ[pos] : q, o.gamma) * l);
    }
  }
  return out;
}

function nllRef(x: ArrayLike<number>, shape: readonly number[], target: number[], weight: number[] | undefined, ignoreIndex: number): number[] {
  const d = classDims(shape);
  const out: number[] = [];
  for (let n = 0; n < d.outer; n++) {
    for (let s = 0; s < d.inner; s++) {
      const t = target[n * d.inner + s];
      out.push(t === ignoreIndex ? 0 : -(weight ? weight[t] : 1) * x[n * d.classes * d.inner + t * d.inner + s]);
    }
  }
  return out;
}

/** ATen's binary_cross_entropy_with_logits as written: `(1-t)·x + (1+(pw-1)·t)·(log(e^-m + e^(-x-m)) + m)`. */
function bceWithLogitsRef(x: number, t: number, w: number, pw: number): number {
  const m = Math.max(-x, 0);
  return w * ((1 - t) * x + (1 + (pw - 1) * t) * (Math.log(Math.exp(-m) + Math.exp(-x - m)) + m));
}

function bceRef(x: number, t: number, w: number): number {
  return w * ((t - 1) * Math.max(Math.log1p(-x), -100) - t * Math.max(Math.log(x), -100));
}

/** torchvision.ops.sigmoid_focal_loss as written (α < 0 or null: no α). */
function sigmoidFocalRef(x: number, t: number, alpha: number | null, gamma: number): number {
  const p = sigmoid(x);
  const ce = bceWithLogitsRef(x, t, 1, 1);
  const pT = p * t + (1 - p) * (1 - t);
  const loss = ce * Math.pow(1 - pT, gamma);
  return alpha !== null && alpha >= 0 ? (alpha * t + (1 - alpha) * (1 - t)) * loss : loss;
}

/** Numpy broadcasting of a weight of `wShape` to `shape`: the weight index of each element. */
function broadcastIndex(wShape: readonly number[], shape: readonly number[]): (i: number) => number {
  const rank = shape.length;
  const w = shape.map((_, d) => {
    const j = d - (rank - wShape.length);
    return j >= 0 ? wShape[j] : 1;
  });
  return (i) => {
    let k = 0;
    let rest = i;
    const idx = new Array<number>(rank);
    for (let d = rank - 1; d >= 0; d--) {
      idx[d] = rest % shape[d];
      rest = Math.floor(rest / shape[d]);
    }
    for (let d = 0; d < rank; d++) k = k * w[d] + (w[d] === 1 ? 0 : idx[d]);
    return k;
  };
}

// ---------------------------------------------------------------------------------------------
// the check: loss against the reference, gradient against its central differences
// ---------------------------------------------------------------------------------------------

interface LossLike {
  forward(input: api.Tensor, target: never): number | Float32Array;
  forwardBackward(input: api.Tensor, target: never, o?: api.BackwardOptions): api.LossAndGrad;
}

/**
 * `ref(x)` gives the per-position (per-element) losses in float64; the objective is their
 * reduction weighted by gradOutput, `denominator` is 'mean''s. Checks the API's loss and its
 * gradient against central differences of the objective (step `h(i, x)`).
 */
function checkAgainstReference(
  what: string,
  loss: LossLike,
  reduction: Reduction,
  input: api.Tensor,
  target: unknown,
  ref: (x: Float64Array) => number[],
  denominator: number,
  r: () => number,
  h: (i: number, x: number) => number = (_, x) => 1e-6 * Math.max(1, Math.abs(x)),
): void {
  const x0 = Float64Array.from(input.data);
  const losses0 = ref(x0);
  const gOut = reduction === "none" ? randn(r, losses0.length) : 0.5 + r();
  const objective = (x: Float64Array): number => {
    const l = ref(x);
    if (reduction === "none") return l.reduce((acc, v, i) => acc + v * (gOut as Float32Array)[i], 0);
    const sum = l.reduce((a, b) => a + b, 0);
    return (gOut as number) * (reduction === "mean" ? sum / denominator : sum);
  };
  const { loss: got, grad } = loss.forwardBackward(input, target as never, { gradOutput: gOut });
  const sum = losses0.reduce((a, b) => a + b, 0);
  const want = reduction === "none" ? losses0 : [reduction === "mean" ? sum / denominator : sum];
  expectClose(typeof got === "number" ? [got] : got, want.map(Math.fround), `${what}: loss`);
  const fd = new Float64Array(x0.length);
  for (let i = 0; i < x0.length; i++) {
    const step = h(i, x0[i]);
    const up = x0.slice();
    const down = x0.slice();
    up[i] += step;
    down[i] -= step;
    fd[i] = (objective(up) - objective(down)) / (2 * step);
  }
  expectClose(grad, Array.from(fd, Math.fround), `${what}: gradient vs central differences`);
}

let seed = 1;

afterEach(() => {
  api.configure({ workspaceBytes: api.DEFAULT_WORKSPACE_BYTES });
});

for (const backend of BACKENDS) {
  describe(`backend ${backend}`, () => {
    describe("FocalLoss", () => {
      const shapes: number[][] = [[5, 4], [2, 3, 4], [4], [3, 7, 1, 2]];
      for (const gamma of [0, 0.25, 0.5, 1, 2, 5]) {
        for (const gradient of ["full", "detached"] as const) {
          it(`gradient (${gradient}, gamma ${gamma}) matches central differences of the module's loss`, () => {
            const r = rng(seed++);
            shapes.forEach((shape, k) => {
              const d = classDims(shape);
              const positions = d.outer * d.inner;
              const reduction = REDUCTIONS[k % 3];
              const x = randn(r, product(shape), 3);
              const target = Array.from({ length: positions }, () => Math.floor(r() * d.classes));
              if (positions > 2) target[1] = -100;
              const opts: FocalRefOptions = { gamma, ignoreIndex: -100 };
              if (k % 2 === 0) opts.alpha = Array.from({ length: d.classes }, () => Math.fround(0.05 + 0.9 * r()));
              if (k >= 2) opts.weight = Array.from({ length: d.classes }, () => Math.fround(0.1 + 2 * r()));
              const loss = new api.FocalLoss({ gamma, gradient, reduction, alpha: opts.alpha, weight: opts.weight, backend });
              const x0 = Float64Array.from(x);
              const frozen = gradient === "detached" ? qPerPosition(x0, shape, target, -100) : undefined;
              const denominator = target.reduce((acc, t) => acc + (t === -100 ? 0 : opts.weight ? opts.weight[t] : 1), 0);
              const tgt = { data: Int32Array.from(target), shape: shape.length === 1 ? [] : [shape[0], ...shape.slice(2)] };
              checkAgainstReference(`${shape}`, loss, reduction, { data: x, shape }, tgt, (xs) => focalRef(xs, shape, target, opts, frozen), denominator, r);
            });
          });
        }
      }

      for (const gamma of [0.25, 0.5, 0.9]) {
        it(`near saturation with gamma ${gamma}: the full gradient still matches central differences`, () => {
          // p_t = 1 - O(1e-5 .. 1e-7): (1 - p_t)^(γ-1) is large, the gradient is not.
          const x = Float32Array.from([12, 1, -1, 0, 6, 0, 0, 0, 0, 14, 0, 0, 16, 0, 0.5, 0, 0.2, 0.1, 0, 0.3]);
          const target = [0, 0, 1, 0, 2];
          const r = rng(seed++);
          for (const reduction of REDUCTIONS) {
            const loss = new api.FocalLoss({ gamma, reduction, alpha: [0.25, 0.5, 0.75, 1], backend });
            const opts = { gamma, alpha: [0.25, 0.5, 0.75, 1], ignoreIndex: -100 };
            checkAgainstReference(reduction, loss, reduction, { data: x, shape: [5, 4] }, target, (xs) => focalRef(xs, [5, 4], target, opts), 5, r, () => 1e-7);
          }
        });
      }

      it("saturated rows (p_t = 1 in float32) and a -Infinity target logit get finite gradients for gamma < 1", () => {
        const x = Float32Array.from([1e4, 0, -1e4, 40, 0, 1, -Infinity, 0, 1]);
        for (const gamma of [0.25, 0.5]) {
          const { loss, grad } = new api.FocalLoss({ gamma, reduction: "none", backend }).forwardBackward({ data: x, shape: [3, 3] }, [0, 0, 0]);
          expect(Array.from(loss as Float32Array).slice(0, 2).every((v) => v >= 0 && v < 1e-20)).toBe(true);
          expect((loss as Float32Array)[2]).toBe(Infinity);
          expect(Array.from(grad).every(Number.isFinite)).toBe(true);
          expect(Array.from(grad.subarray(0, 6)).every((v) => Math.abs(v) < 1e-20)).toBe(true);
          const p1 = 1 / (1 + Math.E);
          expectClose(grad.subarray(6), [-1, p1, 1 - p1], "-inf target row");
        }
      });

      it("gamma = 0 is CrossEntropyLoss (weight, ignoreIndex, every reduction, spatial), bit for bit", () => {
        const r = rng(seed++);
        for (const shape of [[6, 5], [2, 4, 3]]) {
          const d = classDims(shape);
          const x = randn(r, product(shape), 4);
          const target = Int32Array.from({ length: d.outer * d.inner }, (_, i) => (i % 4 === 1 ? -100 : Math.floor(r() * d.classes)));
          const weight = Float32Array.from({ length: d.classes }, () => 0.1 + 2 * r());
          const tshape = [shape[0], ...shape.slice(2)];
          for (const reduction of REDUCTIONS) {
            for (const w of [undefined, weight]) {
              const fl = new api.FocalLoss({ gamma: 0, weight: w, reduction, backend });
              const ce = new api.CrossEntropyLoss({ weight: w, reduction, backend });
              const gradOutput = reduction === "none" ? randn(r, target.length) : 0.7;
              const a = fl.forwardBackward({ data: x, shape }, { data: target, shape: tshape }, { gradOutput });
              const b = ce.forwardBackward({ data: x, shape }, { data: target, shape: tshape }, { gradOutput });
              expect(a.loss).toEqual(b.loss);
              expect(a.grad).toEqual(b.grad);
            }
          }
        }
      });

      it("alpha as a number means [alpha, 1 - alpha] for two classes", () => {
        const r = rng(seed++);
        const x = { data: randn(r, 12, 2), shape: [6, 2] };
        const target = [0, 1, 1, 0, 1, 0];
        const a = new api.FocalLoss({ alpha: 0.25, backend }).forwardBackward(x, target);
        const b = new api.FocalLoss({ alpha: [0.25, 0.75], backend }).forwardBackward(x, target);
        expect(a.loss).toEqual(b.loss);
        expect(a.grad).toEqual(b.grad);
      });

      it("sizeAverage maps to 'mean' / 'sum'", () => {
        const r = rng(seed++);
        const x = { data: randn(r, 20, 2), shape: [4, 5] };
        const target = [0, 4, 2, 1];
        const run = (o: api.FocalOptions) => new api.FocalLoss({ ...o, backend }).forwardBackward(x, target);
        expect(run({ sizeAverage: true })).toEqual(run({ reduction: "mean" }));
        expect(run({ sizeAverage: false })).toEqual(run({ reduction: "sum" }));
        expect(new api.FocalLoss({ sizeAverage: false }).reduction).toBe("sum");
      });

      it("all positions ignored: 'mean' is NaN, the gradient zeros", () => {
        const { loss, grad } = new api.FocalLoss({ backend }).forwardBackward({ data: new Float32Array(8).fill(1), shape: [2, 4] }, [-100, -100]);
        expect(loss).toBeNaN();
        expect(Array.from(grad)).toEqual(new Array(8).fill(0));
      });
    });

    describe("SigmoidFocalLoss", () => {
      for (const gamma of [0, 0.25, 0.5, 1, 2, 5]) {
        it(`gradient (gamma ${gamma}) matches central differences of torchvision's loss`, () => {
          const r = rng(seed++);
          ([[3, 7], [2, 3, 2, 2], [5]] as number[][]).forEach((shape, k) => {
            const n = product(shape);
            const x = randn(r, n, 3);
            const soft = k === 1;
            const t = Float32Array.from({ length: n }, () => (soft ? r() : r() < 0.4 ? 1 : 0));
            const reduction = REDUCTIONS[k];
            for (const alpha of [0.25, null]) {
              const loss = new api.SigmoidFocalLoss({ alpha, gamma, reduction, backend });
              checkAgainstReference(`${shape} alpha ${alpha}`, loss, reduction, { data: x, shape }, { data: t, shape },
                (xs) => Array.from(xs, (v, i) => sigmoidFocalRef(v, t[i], alpha, gamma)), n, r);
            }
          });
        });
      }

      it("near and at saturation with gamma < 1: central differences, then the finite limit", () => {
        const r = rng(seed++);
        const x = Float32Array.from([8, -8, 12, -12, 15, -15, 5, -1]);
        const t = Float32Array.from([1, 0, 1, 0, 1, 0, 1, 1]);
        for (const gamma of [0.25, 0.5]) {
          const loss = new api.SigmoidFocalLoss({ gamma, reduction: "sum", backend });
          checkAgainstReference(`gamma ${gamma}`, loss, "sum", { data: x, shape: [8] }, t, (xs) => Array.from(xs, (v, i) => sigmoidFocalRef(v, t[i], 0.25, gamma)), 8, r, () => 1e-5);
          const sat = Float32Array.from([20, -20, 100, -100, 1e4, -1e4]);
          const { grad } = loss.forwardBackward({ data: sat, shape: [6] }, Float32Array.from([1, 0, 1, 0, 1, 0]));
          expect(Array.from(grad).every((v) => Number.isFinite(v) && Math.abs(v) < 1e-8)).toBe(true);
        }
      });

      it("defaults are torchvision's (alpha 0.25, gamma 2, 'none'); alpha null or negative disables alpha", () => {
        const r = rng(seed++);
        const x = { data: randn(r, 10, 2), shape: [2, 5] };
        const t = { data: Float32Array.from({ length: 10 }, () => r()), shape: [2, 5] };
        const def = new api.SigmoidFocalLoss({ backend });
        expect([def.alpha, def.gamma, def.reduction]).toEqual([0.25, 2, "none"]);
        expect(def.forward(x, t)).toEqual(new api.SigmoidFocalLoss({ alpha: 0.25, gamma: 2, reduction: "none", backend }).forward(x, t));
        const off = new api.SigmoidFocalLoss({ alpha: null, backend }).forwardBackward(x, t);
        expect(new api.SigmoidFocalLoss({ alpha: -1, backend }).forwardBackward(x, t)).toEqual(off);
        expect(api.sigmoidFocalLoss(x, t, { alpha: -0.5, reduction: "sum", backend })).toBe(
          new api.SigmoidFocalLoss({ alpha: null, reduction: "sum", backend }).forward(x, t),
        );
      });
    });

    describe("BCEWithLogitsLoss", () => {
      const cases: { shape: number[]; weight?: api.WeightLike; posWeight?: api.WeightLike; wShape?: number[]; pwShape?: number[] }[] = [
        { shape: [4, 5] },
        { shape: [4, 5], weight: [0.5, 1, 1.5, 2, 0.25], wShape: [5], posWeight: { data: [2, 0.5, 3, 1], shape: [4, 1] }, pwShape: [4, 1] },
        { shape: [2, 3, 2, 2], weight: { data: [0.5, 2, 1], shape: [3, 1, 1] }, wShape: [3, 1, 1], posWeight: [3, 0.25], pwShape: [2] },
        // Non-contiguous broadcast dimensions: the weight is expanded to the input's size.
        { shape: [2, 3, 2, 2], weight: { data: [0.5, 2, 1, 1.5], shape: [2, 1, 2, 1] }, wShape: [2, 1, 2, 1], posWeight: { data: [2, 3, 0.5, 1], shape: [2, 1, 1, 2] }, pwShape: [2, 1, 1, 2] },
        { shape: [], weight: { data: [3], shape: [] }, wShape: [] },
      ];
      for (const reduction of REDUCTIONS) {
        it(`gradient ('${reduction}') matches central differences of PyTorch's formula, with broadcast weights`, () => {
          const r = rng(seed++);
          for (const c of cases) {
            const n = product(c.shape);
            const x = randn(r, n, 4);
            const t = Float32Array.from({ length: n }, () => (r() < 0.5 ? r() : r() < 0.5 ? 1 : 0));
            const wv = c.weight === undefined ? undefined : weightValues(c.weight);
            const pv = c.posWeight === undefined ? undefined : weightValues(c.posWeight);
            const wi = c.wShape ? broadcastIndex(c.wShape, c.shape) : undefined;
            const pi = c.pwShape ? broadcastIndex(c.pwShape, c.shape) : undefined;
            const loss = new api.BCEWithLogitsLoss({ weight: c.weight, posWeight: c.posWeight, reduction, backend });
            checkAgainstReference(`${c.shape}`, loss, reduction, { data: x, shape: c.shape }, { data: t, shape: c.shape },
              (xs) => Array.from(xs, (v, i) => bceWithLogitsRef(v, t[i], wv ? wv[wi!(i)] : 1, pv ? pv[pi!(i)] : 1)), n, r);
          }
        });
      }

      it("is stable for logits of ±1e4 and exact for tiny losses", () => {
        const x = Float32Array.from([1e4, -1e4, 1e4, -1e4, -20, 30]);
        const t = Float32Array.from([1, 0, 0, 1, 0, 1]);
        const { loss, grad } = new api.BCEWithLogitsLoss({ reduction: "none", backend }).forwardBackward({ data: x, shape: [6] }, t);
        expectClose(loss as Float32Array, [0, 0, 1e4, 1e4, Math.log1p(Math.exp(-20)), Math.log1p(Math.exp(-30))], "loss");
        expect((loss as Float32Array)[4]).toBeGreaterThan(0);
        expectClose(grad, [-0, 0, 1, -1, sigmoid(-20), -sigmoid(-30)], "grad");
        expect(Math.abs(grad[5] / -sigmoid(-30) - 1)).toBeLessThan(1e-5);
      });
    });

    describe("BCELoss", () => {
      for (const reduction of REDUCTIONS) {
        it(`gradient ('${reduction}') matches central differences of PyTorch's formula`, () => {
          const r = rng(seed++);
          const cases: { shape: number[]; weight?: api.WeightLike; wShape?: number[] }[] = [
            { shape: [3, 4] },
            { shape: [3, 4], weight: [0.5, 1, 2, 1.5], wShape: [4] },
            { shape: [3, 4], weight: { data: [2, 0.5, 1], shape: [3, 1] }, wShape: [3, 1] },
            { shape: [2, 3, 2], weight: { data: [1, 2, 3, 4], shape: [2, 1, 2] }, wShape: [2, 1, 2] },
          ];
          for (const c of cases) {
            const n = product(c.shape);
            const x = Float32Array.from({ length: n }, () => sigmoid(2 * normal(r)));
            const t = Float32Array.from({ length: n }, () => (r() < 0.5 ? r() : 1));
            const wv = c.weight === undefined ? undefined : weightValues(c.weight);
            const wi = c.wShape ? broadcastIndex(c.wShape, c.shape) : undefined;
            const loss = new api.BCELoss({ weight: c.weight, reduction, backend });
            checkAgainstReference(`${c.shape}`, loss, reduction, { data: x, shape: c.shape }, { data: t, shape: c.shape },
              (xs) => Array.from(xs, (v, i) => bceRef(v, t[i], wv ? wv[wi!(i)] : 1)), n, r, (_, v) => 1e-6 * Math.min(v, 1 - v));
          }
        });
      }

      it("clamps the logs at -100 and the gradient's denominator at 1e-12", () => {
        // log(1e-45) = -103.3 (a denormal float32): clamped too.
        const x = Float32Array.from([0, 1, 0, 1, 1e-45]);
        const t = Float32Array.from([1, 0, 0, 1, 1]);
        const { loss, grad } = new api.BCELoss({ reduction: "none", backend }).forwardBackward({ data: x, shape: [5] }, t);
        expectClose(loss as Float32Array, [100, 100, 0, 0, 100], "loss");
        expectClose(grad, [-1e12, 1e12, 0, 0, -1e12], "grad");
      });

      it("rejects inputs outside [0, 1] (NaN included) before touching anything", () => {
        for (const bad of [1.5, -0.25, NaN]) {
          const data = Float32Array.from([0.5, bad, 0.25]);
          const run = () => new api.BCELoss({ backend }).forwardBackward({ data, shape: [3] }, [1, 0, 1], { gradInput: data });
          expect(run).toThrow("all elements of input should be between 0 and 1");
          expect(data[0]).toBe(0.5);
        }
      });
    });

    describe("NLLLoss", () => {
      for (const reduction of REDUCTIONS) {
        it(`gradient ('${reduction}') matches central differences (weight, ignoreIndex, spatial, unbatched)`, () => {
          const r = rng(seed++);
          for (const shape of [[4, 6], [2, 3, 4], [5]]) {
            const d = classDims(shape);
            const x = Float32Array.from({ length: product(shape) }, () => -3 * r());
            const target = Array.from({ length: d.outer * d.inner }, (_, i) => (i === 1 ? 2 : Math.floor(r() * d.classes)));
            const weight = Array.from({ length: d.classes }, () => Math.fround(0.1 + 2 * r()));
            const loss = new api.NLLLoss({ weight, ignoreIndex: 2, reduction, backend });
            const denominator = target.reduce((acc, t) => acc + (t === 2 ? 0 : weight[t]), 0);
            const tgt = { data: target, shape: shape.length === 1 ? [] : [shape[0], ...shape.slice(2)] };
            checkAgainstReference(`${shape}`, loss, reduction, { data: x, shape }, tgt, (xs) => nllRef(xs, shape, target, weight, 2), denominator, r);
          }
        });
      }
    });

    describe("options and errors", () => {
      it("FocalLoss: alpha must fit the classes; gamma, gradient and sizeAverage are checked", () => {
        const x = { data: new Float32Array(15), shape: [3, 5] };
        expect(() => new api.FocalLoss({ alpha: 0.25, backend }).forward(x, [0, 1, 2])).toThrow(
          "FocalLoss: alpha = 0.25 (a number) means [alpha, 1 - alpha] and needs exactly 2 classes, but the input has 5; pass one alpha per class instead",
        );
        expect(() => new api.FocalLoss({ alpha: [0.25, 0.75], backend }).forward(x, [0, 1, 2])).toThrow(
          "alpha tensor should be defined either for all 5 classes or no classes but got alpha tensor of shape: [2]",
        );
        expect(() => new api.FocalLoss({ weight: [1, 2], backend }).forward(x, [0, 1, 2])).toThrow(
          "weight tensor should be defined either for all 5 classes or no classes but got weight tensor of shape: [2]",
        );
        expect(() => new api.FocalLoss({ alpha: [0.1, NaN] })).toThrow("alpha[1] = NaN: weights must be finite");
        expect(() => new api.FocalLoss({ gamma: -1 })).toThrow("FocalLoss: gamma must be a finite number >= 0, got -1");
        expect(() => new api.FocalLoss({ gamma: Infinity })).toThrow("gamma must be a finite number >= 0");
        expect(() => new api.FocalLoss({ gradient: "stop" as never })).toThrow(`FocalLoss: gradient must be 'full' or 'detached', got "stop"`);
        expect(() => new api.FocalLoss({ sizeAverage: true, reduction: "sum" })).toThrow("FocalLoss: pass either sizeAverage or reduction, not both");
        expect(() => new api.FocalLoss({ sizeAverage: 1 as never })).toThrow("FocalLoss: sizeAverage must be a boolean");
        expect(() => new api.FocalLoss({ size_average: true } as never)).toThrow("did you mean 'sizeAverage'?");
        expect(() => new api.FocalLoss({ backend }).forward(x, [0, 5, 1])).toThrow("Target 5 is out of bounds.");
        expect(() => new api.FocalLoss({ backend }).forward(x, Float32Array.from([0, 1, 2]))).toThrow(TypeError);
      });

      it("SigmoidFocalLoss: an unknown reduction is an error (current torchvision's wording)", () => {
        expect(() => new api.SigmoidFocalLoss({ reduction: "avg" as never })).toThrow(
          "Invalid Value for arg 'reduction': 'avg' \n Supported reduction modes: 'none', 'mean', 'sum'",
        );
        expect(() => new api.SigmoidFocalLoss({ gamma: -0.5 })).toThrow("SigmoidFocalLoss: gamma must be a finite number >= 0, got -0.5");
        expect(() => new api.SigmoidFocalLoss({ backend }).forward({ data: new Float32Array(8), shape: [2, 4] }, { data: new Float32Array(6), shape: [2, 3] })).toThrow(
          "Target size ([2, 3]) must be the same as input size ([2, 4])",
        );
      });

      it("BCEWithLogitsLoss / BCELoss: PyTorch's broadcasting errors and target-size messages", () => {
        const x = { data: new Float32Array(12), shape: [3, 4] };
        const t = { data: new Float32Array(12), shape: [3, 4] };
        expect(() => new api.BCEWithLogitsLoss({ weight: [1, 1, 1], backend }).forward(x, t)).toThrow(
          "The size of tensor a (4) must match the size of tensor b (3) at non-singleton dimension 1",
        );
        expect(() => new api.BCEWithLogitsLoss({ posWeight: [1, 1, 1], backend }).forward(x, t)).toThrow(
          "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1",
        );
        expect(() => new api.BCEWithLogitsLoss({ weight: { data: new Float32Array(12), shape: [1, 3, 4] }, backend }).forward(x, t)).toThrow(
          "output with shape [3, 4] doesn't match the broadcast shape [1, 3, 4]",
        );
        expect(() => new api.BCEWithLogitsLoss({ posWeight: { data: new Float32Array(24), shape: [2, 3, 4] }, backend }).forward(x, t)).toThrow(
          "output with shape [3, 4] doesn't match the broadcast shape [2, 3, 4]",
        );
        expect(() => new api.BCEWithLogitsLoss({ backend }).forward(x, { data: new Float32Array(15), shape: [3, 5] })).toThrow(
          "Target size ([3, 5]) must be the same as input size ([3, 4])",
        );
        expect(() => new api.BCEWithLogitsLoss({ backend }).forward(x, new Float32Array(10))).toThrow(
          "Target size ([10]) must be the same as input size ([3, 4])",
        );
        expect(() => new api.BCELoss({ weight: [1, 1, 1], backend }).forward({ data: new Float32Array(12).fill(0.5), shape: [3, 4] }, t)).toThrow(
          "The size of tensor a (4) must match the size of tensor b (3) at non-singleton dimension 1",
        );
        expect(() => new api.BCELoss({ backend }).forward(x, { data: new Float32Array(15), shape: [3, 5] })).toThrow(
          "Using a target size ([3, 5]) that is different to the input size ([3, 4]) is deprecated. Please ensure they have the same size.",
        );
        expect(() => new api.BCEWithLogitsLoss({ pos_weight: [1] } as never)).toThrow("did you mean 'posWeight'?");
        // A bare target needs only the right number of elements.
        expect(new api.BCEWithLogitsLoss({ backend }).forward(x, new Float32Array(12))).toBeCloseTo(Math.log(2), 6);
        expect(new api.BCEWithLogitsLoss({ backend }).forward(x, new Array(12).fill(1))).toBeCloseTo(Math.log(2), 6);
      });

      it("NLLLoss: PyTorch's target and weight messages", () => {
        const x = { data: new Float32Array(15), shape: [3, 5] };
        expect(() => new api.NLLLoss({ backend }).forward(x, [0, 7, 1])).toThrow("Target 7 is out of bounds.");
        expect(() => new api.NLLLoss({ backend }).forward(x, [0, 1])).toThrow("Expected input batch_size (3) to match target batch_size (2).");
        expect(() => new api.NLLLoss({ weight: [1, 2], backend }).forward(x, [0, 1, 2])).toThrow(
          "weight tensor should be defined either for all 5 classes or no classes but got weight tensor of shape: [2]",
        );
      });

      it("functional forms equal the classes", () => {
        const r = rng(seed++);
        const x = { data: randn(r, 12, 2), shape: [3, 4] };
        const idx = [0, 3, 1];
        const t = { data: Float32Array.from({ length: 12 }, () => r()), shape: [3, 4] };
        const p = { data: Float32Array.from(x.data, sigmoid), shape: [3, 4] };
        expect(api.focalLoss(x, idx, { gamma: 1.5, backend })).toBe(new api.FocalLoss({ gamma: 1.5, backend }).forward(x, idx));
        expect(api.nllLoss(x, idx, { reduction: "sum", backend })).toBe(new api.NLLLoss({ reduction: "sum", backend }).forward(x, idx));
        expect(api.sigmoidFocalLoss(x, t, { backend })).toEqual(new api.SigmoidFocalLoss({ backend }).forward(x, t));
        expect(api.binaryCrossEntropyWithLogits(x, t, { backend })).toBe(new api.BCEWithLogitsLoss({ backend }).forward(x, t));
        expect(api.binaryCrossEntropy(p, t, { backend })).toBe(new api.BCELoss({ backend }).forward(p, t));
      });
    });
  });
}

function weightValues(w: api.WeightLike): Float32Array {
  if (w instanceof Float32Array) return w;
  if (Array.isArray(w)) return Float32Array.from(w);
  return Float32Array.from(w.data);
}

/** `1 - p_t` of each position at `x` (0 where ignored): the detached surrogate's constants. */
function qPerPosition(x: Float64Array, shape: readonly number[], target: number[], ignoreIndex: number): number[] {
  const d = classDims(shape);
  const out: number[] = [];
  for (let n = 0; n < d.outer; n++) {
    for (let s = 0; s < d.inner; s++) {
      const t = target[n * d.inner + s];
      out.push(t === ignoreIndex ? 0 : logSoftmaxAt(x, n * d.classes * d.inner + s, d.inner, d.classes, t).q);
    }
  }
  return out;
}

/** The same call on every kernel, whole and in chunks of a tiny workspace: identical bits. */
describe("chunked wasm calls give the same bits as one call; SIMD = scalar", () => {
  const r = rng(4242);
  const spatial = { data: randn(r, 2 * 5 * 37, 3), shape: [2, 5, 37] };
  const idx = { data: Int32Array.from({ length: 74 }, (_, i) => (i % 9 === 4 ? -100 : Math.floor(r() * 5))), shape: [2, 37] };
  const soft = { data: Float32Array.from({ length: 370 }, () => r()), shape: [2, 5, 37] };
  const probs = { data: Float32Array.from(spatial.data, sigmoid), shape: spatial.shape };
  const rows = { data: randn(r, 9 * 301, 3), shape: [9, 301] };
  const rowIdx = Int32Array.from({ length: 9 }, () => Math.floor(r() * 301));
  const runs: [string, (backend: api.BackendName) => api.LossAndGrad][] = [
    ["FocalLoss spatial", (b) => new api.FocalLoss({ gamma: 0.5, alpha: [0.1, 0.2, 0.3, 0.2, 0.2], reduction: "none", backend: b }).forwardBackward(spatial, idx, { gradOutput: randnFixed(74) })],
    ["FocalLoss rows", (b) => new api.FocalLoss({ gamma: 2, gradient: "detached", backend: b }).forwardBackward(rows, rowIdx)],
    ["NLLLoss spatial", (b) => new api.NLLLoss({ weight: [1, 2, 3, 4, 5], reduction: "sum", backend: b }).forwardBackward(spatial, idx)],
    ["SigmoidFocalLoss", (b) => new api.SigmoidFocalLoss({ gamma: 1.5, reduction: "mean", backend: b }).forwardBackward(spatial, soft)],
    ["BCEWithLogitsLoss", (b) => new api.BCEWithLogitsLoss({ weight: { data: [1, 2, 3, 4, 5], shape: [5, 1] }, posWeight: randnFixed(37).map(Math.abs), reduction: "none", backend: b }).forwardBackward(spatial, soft, { gradOutput: randnFixed(370) })],
    ["BCEWithLogitsLoss expanded weight", (b) => new api.BCEWithLogitsLoss({ weight: { data: randnFixed(74).map(Math.abs), shape: [2, 1, 37] }, backend: b }).forwardBackward(spatial, soft)],
    ["BCELoss", (b) => new api.BCELoss({ weight: randnFixed(37).map(Math.abs), reduction: "sum", backend: b }).forwardBackward(probs, soft)],
  ];
  for (const [what, run] of runs) {
    it(what, () => {
      const whole = { simd: run("simd"), scalar: run("scalar") };
      expect(whole.simd).toEqual(whole.scalar);
      for (const bytes of [64, 1000, 4096]) {
        api.configure({ workspaceBytes: bytes });
        for (const b of ["simd", "scalar"] as const) expect(run(b), `${b} with a ${bytes}-byte workspace`).toEqual(whole[b]);
      }
    });
  }
});

function randnFixed(n: number): Float32Array {
  const r = rng(n * 7919);
  return randn(r, n);
}
