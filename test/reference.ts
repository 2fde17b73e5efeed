/**
 * An independent float64 reference of the losses, written from PyTorch's definitions (the
 * ATen composition `log_softmax` → `nll_loss` / label smoothing / probability targets, and
 * autograd's backward of each step), not from the package's fused formulas. Non-finite values
 * flow through the same steps as in PyTorch, so NaN and ±Infinity land where PyTorch puts them.
 *
 * Used by the property tests and the soak script: every backend must agree with it within the
 * oracle tolerance `1e-5 + 1e-4·|expected|` after rounding it to float32.
 */

export type RefReduction = "none" | "mean" | "sum";

export interface RefTensor {
  data: ArrayLike<number>;
  shape: readonly number[];
}

export type RefTarget = { kind: "index"; data: ArrayLike<number> } | { kind: "prob"; data: ArrayLike<number> };

export interface RefResult {
  /** The reduced loss (one value) or one loss per position ('none'). */
  loss: Float64Array;
  /** d(loss · gradOutput)/d(input), in the input's layout. */
  grad: Float64Array;
}

interface Dims {
  outer: number;
  classes: number;
  inner: number;
}

function dims(shape: readonly number[]): Dims {
  if (shape.length === 1) return { outer: 1, classes: shape[0], inner: 1 };
  let inner = 1;
  for (const d of shape.slice(2)) inner *= d;
  return { outer: shape[0], classes: shape[1], inner };
}

/** Visits every position (sample n, spatial s) with the flat index of its class 0 and the class stride. */
function forEachPosition(d: Dims, visit: (position: number, base: number, stride: number) => void): void {
  for (let n = 0; n < d.outer; n++) {
    for (let s = 0; s < d.inner; s++) visit(n * d.inner + s, n * d.classes * d.inner + s, d.inner);
  }
}

/**
 * PyTorch computes in float32 and materialises each step as a float32 tensor: a step that
 * overflows float32 becomes ±Infinity there (then NaN after `·0`, `∞-∞`), where float64 would
 * stay finite. The reference keeps float64 precision but applies float32's overflow at each
 * materialised step, so that such positions come out as in PyTorch.
 */
export function f32Overflow(x: number): number {
  const r = Math.fround(x);
  return Number.isFinite(r) || Number.isNaN(r) ? x : r;
}

/** Off for the plain float64 result (what the JS backend, computing in float64, returns). */
let emulateOverflow = true;
const ovf = (x: number): number => (emulateOverflow ? f32Overflow(x) : x);

/** Runs `f` with float32 overflow emulated (PyTorch) or not (exact float64). */
export function withOverflow<T>(on: boolean, f: () => T): T {
  const before = emulateOverflow;
  emulateOverflow = on;
  try {
    return f();
  } finally {
    emulateOverflow = before;
  }
}

/** Σ of `n` terms in float64, overflowing as a float32 accumulator would. */
function sumOf(n: number, term: (i: number) => number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s = ovf(s + term(i));
  return s;
}

/** ATen's CPU log_softmax: `x - max - log(Σ exp(x - max))`, NaN-propagating max. */
export function logSoftmax(x: ArrayLike<number>, shape: readonly number[]): Float64Array {
  const d = dims(shape);
  const out = new Float64Array(x.length);
  forEachPosition(d, (_p, base, stride) => {
    let max = -Infinity;
    for (let c = 0; c < d.classes; c++) max = Math.max(max, x[base + c * stride]);
    let sum = 0;
    for (let c = 0; c < d.classes; c++) sum += Math.exp(x[base + c * stride] - max);
    const logSum = Math.log(sum);
    for (let c = 0; c < d.classes; c++) out[base + c * stride] = ovf(ovf(x[base + c * stride] - max) - logSum);
  });
  return out;
}

/** Autograd's log_softmax backward: `dx = dlogp - exp(logp)·Σ dlogp`. */
function logSoftmaxBackward(logp: Float64Array, dlogp: Float64Array, shape: readonly number[]): Float64Array {
  const d = dims(shape);
  const grad = new Float64Array(logp.length);
  forEachPosition(d, (_p, base, stride) => {
    const sum = sumOf(d.classes, (c) => dlogp[base + c * stride]);
    for (let c = 0; c < d.classes; c++) {
      const i = base + c * stride;
      grad[i] = ovf(dlogp[i] - ovf(Math.exp(logp[i]) * sum));
    }
  });
  return grad;
}

/** The upstream gradient of each position's loss under `reduction`. */
function perPosition(reduction: RefReduction, gradOutput: number | ArrayLike<number> | undefined, denominator: number) {
  return (p: number): number => {
    if (reduction === "none") return gradOutput === undefined ? 1 : typeof gradOutput === "number" ? gradOutput : gradOutput[p];
    const g = typeof gradOutput === "number" ? gradOutput : 1;
    return reduction === "mean" ? g / denominator : g;
  };
}

export interface CrossEntropyRefOptions {
  weight?: ArrayLike<number>;
  ignoreIndex?: number;
  reduction?: RefReduction;
  labelSmoothing?: number;
}

/**
 * `torch.nn.functional.cross_entropy` in float64, following ATen's
 * `cross_entropy_loss` (index targets: `nll_loss` plus the label-smoothing term with its
 * `masked_fill` of ignored positions; probability targets: `-(logp·target·weight).sum`).
 */
export function crossEntropyRef(
  input: RefTensor,
  target: RefTarget,
  options: CrossEntropyRefOptions = {},
  gradOutput?: number | ArrayLike<number>,
): RefResult {
  const { weight, ignoreIndex = -100, reduction = "mean", labelSmoothing: eps = 0 } = options;
  const d = dims(input.shape);
  const C = d.classes;
  const nPositions = d.outer * d.inner;
  const w = (c: number): number => (weight ? weight[c] : 1);
  const logp = logSoftmax(input.data, input.shape);
  const dlogp = new Float64Array(logp.length);
  const losses = new Float64Array(nPositions);
  let denominator: number;
  let reduced: number;

  if (target.kind === "index") {
    const t = target.data;
    const ignored = (p: number): boolean => t[p] === ignoreIndex;
    // nll_loss: -w[t]·logp[t] per kept position; 'mean' divides by Σ w[t] over kept positions.
    const nll = new Float64Array(nPositions);
    const smooth = new Float64Array(nPositions);
    let totalWeight = 0;
    forEachPosition(d, (p, base, stride) => {
      if (ignored(p)) return;
      nll[p] = ovf(-w(t[p]) * logp[base + t[p] * stride]);
      totalWeight += w(t[p]);
      // smooth_loss = -Σ_c w_c·logp_c, then masked_fill(ignored, 0): only kept positions.
      smooth[p] = -sumOf(C, (c) => ovf(logp[base + c * stride] * w(c)));
    });
    denominator = totalWeight;
    const sum = (a: Float64Array): number => sumOf(a.length, (i) => a[i]);
    // Without smoothing ATen calls nll_loss alone: the smoothing term does not exist (no 0·∞).
    const smoothing = eps > 0;
    const mix = (nllPart: number, smoothPart: number): number =>
      smoothing ? ovf(ovf((1 - eps) * nllPart) + ovf((eps / C) * smoothPart)) : nllPart;
    if (reduction === "none") for (let p = 0; p < nPositions; p++) losses[p] = mix(nll[p], smooth[p]);
    const nllReduced = reduction === "mean" ? ovf(sum(nll) / totalWeight) : sum(nll);
    const smoothReduced = reduction === "mean" ? ovf(sum(smooth) / totalWeight) : sum(smooth);
    reduced = mix(nllReduced, smoothReduced);

    const g = perPosition(reduction, gradOutput, denominator);
    forEachPosition(d, (p, base, stride) => {
      if (ignored(p)) return;
      const gp = g(p);
      const i = base + t[p] * stride;
      dlogp[i] = ovf(dlogp[i] - ovf((smoothing ? 1 - eps : 1) * w(t[p]) * gp));
      if (smoothing) for (let c = 0; c < C; c++) dlogp[base + c * stride] = ovf(dlogp[base + c * stride] - ovf((eps / C) * w(c) * gp));
    });
  } else {
    const y = target.data;
    // Label smoothing mixes the targets first: target·(1-ε) + ε/C.
    const q = (i: number): number => (eps > 0 ? y[i] * (1 - eps) + eps / C : y[i]);
    let total = 0;
    forEachPosition(d, (p, base, stride) => {
      const s = sumOf(C, (c) => ovf(ovf(logp[base + c * stride] * q(base + c * stride)) * w(c)));
      losses[p] = -s;
      total = ovf(total - s);
    });
    // 'mean' divides by numel / C, and is NaN for an empty input (ATen's explicit fill_(NAN)).
    const elements = input.data.length;
    denominator = elements === 0 ? NaN : nPositions;
    reduced = reduction === "mean" ? (elements === 0 ? NaN : total / nPositions) : total;
    const g = perPosition(reduction, gradOutput, denominator);
    forEachPosition(d, (p, base, stride) => {
      const gp = g(p);
      for (let c = 0; c < C; c++) {
        const i = base + c * stride;
        dlogp[i] = ovf(-q(i) * w(c) * gp);
      }
    });
  }

  const grad = logSoftmaxBackward(logp, dlogp, input.shape);
  const loss = reduction === "none" ? losses : Float64Array.of(reduced);
  return { loss, grad };
}
