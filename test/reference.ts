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
    for (let c = 0; c < d.classes; c++) out[base + c * stride] = x[base + c * stride] - max - logSum;
  });
  return out;
}

/** Autograd's log_softmax backward: `dx = dlogp - exp(logp)·Σ dlogp`. */
function logSoftmaxBackward(logp: Float64Array, dlogp: Float64Array, shape: readonly number[]): Float64Array {
  const d = dims(shape);
  const grad = new Float64Array(logp.length);
  forEachPosition(d, (_p, base, stride) => {
    let sum = 0;
    for (let c = 0; c < d.classes; c++) sum += dlogp[base + c * stride];
    for (let c = 0; c < d.classes; c++) {
      const i = base + c * stride;
      grad[i] = dlogp[i] - Math.exp(logp[i]) * sum;
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
      nll[p] = -w(t[p]) * logp[base + t[p] * stride];
      totalWeight += w(t[p]);
      // smooth_loss = -Σ_c w_c·logp_c, then masked_fill(ignored, 0): only kept positions.
      let s = 0;
      for (let c = 0; c < C; c++) s += logp[base + c * stride] * w(c);
      smooth[p] = -s;
    });
    denominator = totalWeight;
    const sum = (a: Float64Array): number => a.reduce((acc, v) => acc + v, 0);
    // Without smoothing ATen calls nll_loss alone: the smoothing term does not exist (no 0·∞).
    const smoothing = eps > 0;
    if (reduction === "none") {
      for (let p = 0; p < nPositions; p++) losses[p] = smoothing ? (1 - eps) * nll[p] + (eps / C) * smooth[p] : nll[p];
    }
    const nllReduced = reduction === "mean" ? sum(nll) / totalWeight : sum(nll);
    const smoothReduced = reduction === "mean" ? sum(smooth) / totalWeight : sum(smooth);
    reduced = smoothing ? (1 - eps) * nllReduced + (eps / C) * smoothReduced : nllReduced;

    const g = perPosition(reduction, gradOutput, denominator);
    forEachPosition(d, (p, base, stride) => {
      if (ignored(p)) return;
      const gp = g(p);
      dlogp[base + t[p] * stride] += -(smoothing ? 1 - eps : 1) * w(t[p]) * gp;
      if (smoothing) for (let c = 0; c < C; c++) dlogp[base + c * stride] += -(eps / C) * w(c) * gp;
    });
  } else {
    const y = target.data;
    // Label smoothing mixes the targets first: target·(1-ε) + ε/C.
    const q = (i: number): number => (eps > 0 ? y[i] * (1 - eps) + eps / C : y[i]);
    let total = 0;
    forEachPosition(d, (p, base, stride) => {
      let s = 0;
      for (let c = 0; c < C; c++) {
        const i = base + c * stride;
        s += logp[i] * q(i) * w(c);
      }
      losses[p] = -s;
      total += -s;
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
        dlogp[i] = -q(i) * w(c) * gp;
      }
    });
  }

  const grad = logSoftmaxBackward(logp, dlogp, input.shape);
  const loss = reduction === "none" ? losses : Float64Array.of(reduced);
  return { loss, grad };
}
