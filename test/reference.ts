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

/** `torch.nn.functional.nll_loss` on log-probabilities, in float64. */
export function nllRef(
  input: RefTensor,
  target: ArrayLike<number>,
  options: { weight?: ArrayLike<number>; ignoreIndex?: number; reduction?: RefReduction } = {},
  gradOutput?: number | ArrayLike<number>,
): RefResult {
  const { weight, ignoreIndex = -100, reduction = "mean" } = options;
  const d = dims(input.shape);
  const w = (c: number): number => (weight ? weight[c] : 1);
  const losses = new Float64Array(d.outer * d.inner);
  let totalWeight = 0;
  forEachPosition(d, (p, base, stride) => {
    if (target[p] === ignoreIndex) return;
    losses[p] = -w(target[p]) * input.data[base + target[p] * stride];
    totalWeight += w(target[p]);
  });
  const sum = sumOf(losses.length, (p) => losses[p]);
  const g = perPosition(reduction, gradOutput, totalWeight);
  const grad = new Float64Array(input.data.length);
  forEachPosition(d, (p, base, stride) => {
    if (target[p] !== ignoreIndex) grad[base + target[p] * stride] = -w(target[p]) * g(p);
  });
  return { loss: reduced(reduction, losses, sum, totalWeight), grad };
}

function reduced(reduction: RefReduction, losses: Float64Array, sum: number, denominator: number): Float64Array {
  return reduction === "none" ? losses : Float64Array.of(reduction === "mean" ? sum / denominator : sum);
}

/**
 * The widely copied softmax `FocalLoss` module, generalised as the package documents it:
 * `loss = -alpha[t]·weight[t]·(1 - p_t)^γ·log p_t`, 'mean' over Σ weight[t] of kept positions.
 * `gradient: 'full'` differentiates through p_t, 'detached' holds it constant (the module's
 * `Variable(logpt.data.exp())`).
 */
export function focalRef(
  input: RefTensor,
  target: ArrayLike<number>,
  options: {
    gamma?: number;
    alpha?: ArrayLike<number>;
    weight?: ArrayLike<number>;
    ignoreIndex?: number;
    reduction?: RefReduction;
    gradient?: "full" | "detached";
  } = {},
  gradOutput?: number | ArrayLike<number>,
): RefResult {
  const { gamma = 2, alpha, weight, ignoreIndex = -100, reduction = "mean", gradient = "full" } = options;
  const d = dims(input.shape);
  const logp = logSoftmax(input.data, input.shape);
  const losses = new Float64Array(d.outer * d.inner);
  const dLossDLogPt = new Float64Array(losses.length);
  let totalWeight = 0;
  forEachPosition(d, (p, base, stride) => {
    const t = target[p];
    if (t === ignoreIndex) return;
    const c = (alpha ? alpha[t] : 1) * (weight ? weight[t] : 1);
    totalWeight += weight ? weight[t] : 1;
    const u = logp[base + t * stride];
    const pt = Math.exp(u);
    const m = -Math.expm1(u); // 1 - p_t without cancellation
    losses[p] = -c * m ** gamma * u;
    // d/du of -c·(1 - e^u)^γ·u = -c·[(1 - p)^γ - γ·(1 - p)^(γ-1)·p·u]
    const focusTerm = gradient === "detached" || gamma === 0 ? 0 : gamma * m ** (gamma - 1) * pt * u;
    dLossDLogPt[p] = -c * (m ** gamma - focusTerm);
  });
  const sum = sumOf(losses.length, (p) => losses[p]);
  const g = perPosition(reduction, gradOutput, totalWeight);
  const dlogp = new Float64Array(logp.length);
  forEachPosition(d, (p, base, stride) => {
    if (target[p] !== ignoreIndex) dlogp[base + target[p] * stride] = dLossDLogPt[p] * g(p);
  });
  return { loss: reduced(reduction, losses, sum, totalWeight), grad: logSoftmaxBackward(logp, dlogp, input.shape) };
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** Element-wise options: weights already broadcast to one value per element. */
export interface ElementRefOptions {
  weight?: ArrayLike<number>;
  posWeight?: ArrayLike<number>;
  reduction?: RefReduction;
}

/** Reduces element-wise losses ('mean' over every element) and scales the local gradients. */
function elementwise(
  n: number,
  reduction: RefReduction,
  gradOutput: number | ArrayLike<number> | undefined,
  lossAndSlope: (i: number) => [number, number],
): RefResult {
  const losses = new Float64Array(n);
  const grad = new Float64Array(n);
  const g = perPosition(reduction, gradOutput, n);
  for (let i = 0; i < n; i++) {
    const [l, slope] = lossAndSlope(i);
    losses[i] = l;
    grad[i] = slope * g(i);
  }
  return { loss: reduced(reduction, losses, sumOf(n, (i) => losses[i]), n), grad };
}

/**
 * `binary_cross_entropy_with_logits` as ATen writes it:
 * `(1 - t)·x + (1 + (pw - 1)·t)·(log(e^-m + e^(-x-m)) + m)`, `m = max(-x, 0)`, times the weight;
 * gradient `((pw·t + 1 - t)·σ(x) - pw·t)·w`.
 */
export function bceWithLogitsRef(input: RefTensor, target: ArrayLike<number>, options: ElementRefOptions = {}, gradOutput?: number | ArrayLike<number>): RefResult {
  const { weight, posWeight, reduction = "mean" } = options;
  const x = input.data;
  return elementwise(x.length, reduction, gradOutput, (i) => {
    const t = target[i];
    const pw = posWeight ? posWeight[i] : 1;
    const w = weight ? weight[i] : 1;
    const m = Math.max(-x[i], 0);
    const logWeight = (pw - 1) * t + 1;
    const loss = (1 - t) * x[i] + logWeight * (Math.log(Math.exp(-m) + Math.exp(-x[i] - m)) + m);
    return [loss * w, ((pw * t + 1 - t) * sigmoid(x[i]) - pw * t) * w];
  });
}

/** `binary_cross_entropy` (ATen CPU): logs clamped at -100, gradient over `max(x·(1 - x), 1e-12)`. */
export function bceRef(input: RefTensor, target: ArrayLike<number>, options: ElementRefOptions = {}, gradOutput?: number | ArrayLike<number>): RefResult {
  const { weight, reduction = "mean" } = options;
  const x = input.data;
  return elementwise(x.length, reduction, gradOutput, (i) => {
    const t = target[i];
    const w = weight ? weight[i] : 1;
    const loss = -w * (t * Math.max(Math.log(x[i]), -100) + (1 - t) * Math.max(Math.log(1 - x[i]), -100));
    return [loss, (w * (x[i] - t)) / Math.max((1 - x[i]) * x[i], 1e-12)];
  });
}

/**
 * `torchvision.ops.sigmoid_focal_loss`: `α_t·(1 - p_t)^γ·BCEWithLogits(x, t)` with
 * `1 - p_t = σ(x)·(1 - t) + (1 - σ(x))·t`; `alpha` null (or negative) turns α_t off.
 */
export function sigmoidFocalRef(
  input: RefTensor,
  target: ArrayLike<number>,
  options: { alpha?: number | null; gamma?: number; reduction?: RefReduction } = {},
  gradOutput?: number | ArrayLike<number>,
): RefResult {
  const { alpha = 0.25, gamma = 2, reduction = "none" } = options;
  const x = input.data;
  const ce = bceWithLogitsRef(input, target, { reduction: "none" });
  return elementwise(x.length, reduction, gradOutput, (i) => {
    const t = target[i];
    const s = sigmoid(x[i]);
    const m = s * (1 - t) + (1 - s) * t;
    const alphaT = alpha === null || alpha < 0 ? 1 : alpha * t + (1 - alpha) * (1 - t);
    const ceI = ce.loss[i];
    // d/dx [ce·m^γ] = (σ - t)·m^γ + ce·γ·m^(γ-1)·σ(1 - σ)(1 - 2t)
    const slope = (s - t) * m ** gamma + (gamma === 0 ? 0 : ceI * gamma * m ** (gamma - 1) * s * (1 - s) * (1 - 2 * t));
    return [alphaT * ceI * m ** gamma, alphaT * slope];
  });
}

/** Numpy-style broadcast of `values` (of `shape`) to `toShape`, as PyTorch broadcasts weights. */
export function broadcastValues(values: ArrayLike<number>, shape: readonly number[], toShape: readonly number[]): Float64Array {
  const n = toShape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  const offset = toShape.length - shape.length;
  for (let i = 0; i < n; i++) {
    let rest = i;
    let src = 0;
    let stride = 1;
    for (let k = toShape.length - 1; k >= 0; k--) {
      const coord = rest % toShape[k];
      rest = Math.floor(rest / toShape[k]);
      const j = k - offset;
      if (j >= 0) {
        if (shape[j] !== 1) src += coord * stride;
        stride *= shape[j];
      }
    }
    out[i] = values[src];
  }
  return out;
}
