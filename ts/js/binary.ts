/**
 * The element-wise binary family in pure JS, float64 (the crate's `binary.rs`): BCE with
 * logits, BCE on probabilities, torchvision's sigmoid focal loss. One pass per call, the
 * same closed forms: `σ(±x)` directly and `-log σ(±x) = max(∓x, 0) + log1p(e^-|x|)`.
 * Broadcast weights are walked with counters (element `i` gets
 * `values[floor(i / repeat) % values.length]`), without a division per element.
 *
 * NAN_NOTE: NaN is written `xi - xi` (xi infinite) inside the loops. A read of the global
 * `NaN` in a branch that has not run yet is compiled by V8 as a generic load of unknown
 * type, so the branch's result, and the sum it feeds, are kept boxed: one heap number per
 * element on every call. (A minifier folds `0 / 0` or a hoisted `const` back into `NaN`.)
 */
import type { BceArgs, BceWithLogitsArgs, SigmoidFocalArgs } from "../backend.js";

const EPSILON = Math.fround(1e-12);

export function bceWithLogitsJs(args: BceWithLogitsArgs): number {
  const x = args.input;
  const y = args.target;
  const n = x.length;
  const up = args.upstream;
  const grad = up === undefined ? undefined : args.grad;
  const losses = args.losses;
  const wv = args.weight?.values;
  const wr = args.weight?.repeat ?? 1;
  const pv = args.posWeight?.values;
  const pr = args.posWeight?.repeat ?? 1;
  let wk = 0;
  let wj = 0;
  let pk = 0;
  let pj = 0;
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[i];
    const t = y[i];
    let w = 1;
    if (wv) {
      w = wv[wk];
      if (++wj === wr) {
        wj = 0;
        if (++wk === wv.length) wk = 0;
      }
    }
    let pw = 1;
    if (pv) {
      pw = pv[pk];
      if (++pj === pr) {
        pj = 0;
        if (++pk === pv.length) pk = 0;
      }
    }
    const e = Math.exp(-Math.abs(xi));
    const l1p = Math.log1p(e);
    const notT = 1 - t;
    const pos = pw * t;
    // (1 - t)·softplus(x) + pw·t·softplus(-x); PyTorch's own form is NaN at x = -inf (`xi - xi`:
    // see NAN_NOTE at the top).
    let loss = xi === -Infinity ? xi - xi : notT * (Math.max(xi, 0) + l1p) + pos * (Math.max(-xi, 0) + l1p);
    loss *= w;
    if (losses) losses[i] = loss;
    acc += loss;
    if (grad) {
      const r = 1 / (1 + e);
      const s = e * r;
      const p = xi >= 0 ? r : s;
      const pn = xi >= 0 ? s : r;
      const g = typeof up === "number" ? up : up![i];
      grad[i] = (notT * p - pos * pn) * w * g;
    }
  }
  return acc;
}

export function bceJs(args: BceArgs): number {
  const x = args.input;
  const y = args.target;
  const n = x.length;
  const up = args.upstream;
  const grad = up === undefined ? undefined : args.grad;
  const losses = args.losses;
  const wv = args.weight?.values;
  const wr = args.weight?.repeat ?? 1;
  let wk = 0;
  let wj = 0;
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[i];
    const t = y[i];
    let w = 1;
    if (wv) {
      w = wv[wk];
      if (++wj === wr) {
        wj = 0;
        if (++wk === wv.length) wk = 0;
      }
    }
    // PyTorch's formula as written: logs clamped at -100.
    const loss = ((t - 1) * Math.max(Math.log1p(-xi), -100) - t * Math.max(Math.log(xi), -100)) * w;
    if (losses) losses[i] = loss;
    acc += loss;
    if (grad) {
      const g = typeof up === "number" ? up : up![i];
      grad[i] = ((xi - t) / Math.max((1 - xi) * xi, EPSILON)) * w * g;
    }
  }
  return acc;
}

export function sigmoidFocalJs(args: SigmoidFocalArgs): number {
  const x = args.input;
  const y = args.target;
  const n = x.length;
  const up = args.upstream;
  const grad = up === undefined ? undefined : args.grad;
  const losses = args.losses;
  const { alpha, gamma } = args;
  const weighted = alpha >= 0;
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[i];
    const t = y[i];
    const e = Math.exp(-Math.abs(xi));
    const l1p = Math.log1p(e);
    const r = 1 / (1 + e);
    const s = e * r;
    const p = xi >= 0 ? r : s;
    const pn = xi >= 0 ? s : r;
    const notT = 1 - t;
    const ce = xi === -Infinity ? xi - xi : notT * (Math.max(xi, 0) + l1p) + t * (Math.max(-xi, 0) + l1p);
    // 1 - p_t as a sum of non-negative terms (no cancellation as p_t → 1).
    const q = p * notT + t * pn;
    const qg = gamma === 0 ? 1 : Math.pow(q, gamma);
    const at = weighted ? alpha * t + (1 - alpha) * notT : 1;
    const loss = at * (ce * qg);
    if (losses) losses[i] = loss;
    acc += loss;
    if (grad) {
      let d = (notT * p - t * pn) * qg;
      if (gamma !== 0) {
        // γ·ce·q^γ·(dq/dx)/q, with its limit 0 where q = 0; NaN at infinite logits, as autograd.
        const dq = p * pn * (1 - 2 * t);
        d += gamma * ce * qg * (q > 0 ? dq / q : 0);
        if (xi === Infinity || xi === -Infinity) d = xi - xi;
      }
      const g = typeof up === "number" ? up : up![i];
      grad[i] = at * d * g;
    }
  }
  return acc;
}
