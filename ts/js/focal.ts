/** Softmax focal loss in pure JS over the shared softmax sweep (math as in the crate's `focal.rs`). */
import type { FocalArgs } from "../backend.js";
import { A, B_MASS, B_TARGET, G, LOSS, LSE, X_T, softmaxSweep, type Coeffs, type Stats } from "./softmax.js";

/**
 * In: `[l = log p_t, c]`; out: `[loss, dL/dl]`. A typed array both ways: `focalTerms` is too
 * big to be inlined into the per-position `finish`, and doubles passed as arguments to a call
 * that is not inlined are boxed (an allocation per position).
 */
export type FocalTerms = Float64Array;

/**
 * The loss `-c·(1 - p_t)^γ·l` from `l = log p_t` and its derivative with respect to `l`, in
 * closed form (the crate's `focal_terms`): `1 - p_t = -expm1(l)` without cancellation, the
 * 'full' derivative `-c·q^γ·(1 - γ·p_t·l/q)` with its limits where `q = 0` (`l/q → -1`) or
 * `p_t = 0` (`p_t·l/q → 0`), and `-c·q^γ` when `p_t` is detached. `γ = 0` is exactly `-c·l`.
 */
export function focalTerms(io: FocalTerms, gamma: number, detached: boolean): void {
  const l = io[0];
  const c = io[1];
  const out = io;
  if (gamma === 0) {
    out[0] = -c * l;
    out[1] = -c;
    return;
  }
  const q = -Math.expm1(l);
  const qg = Math.pow(q, gamma);
  out[0] = -c * qg * l;
  if (detached) {
    out[1] = -c * qg;
    return;
  }
  const ratio = q > 0 ? l / q : -1;
  const p = Math.exp(l);
  const pl = p > 0 ? p * ratio : 0;
  out[1] = -c * qg * (1 - gamma * pl);
}

const terms: FocalTerms = new Float64Array(2);

export function focalJs(args: FocalArgs): number {
  return softmaxSweep(args, args.target.classes, { kind: "none" }, finishFocal);
}

// grad_c = a·p_c - [c = t]·bTarget with a = bTarget = -g·dL/dl: g·dL/dl·([c = t] - p_c).
function finishFocal(t: number, st: Stats, out: Coeffs, args: FocalArgs): void {
  if (t < 0) {
    out.fill(0);
    return;
  }
  const { alpha, weight } = args;
  terms[0] = st[X_T] - st[LSE];
  terms[1] = (alpha ? alpha[t] : 1) * (weight ? weight[t] : 1);
  focalTerms(terms, args.gamma, args.detached);
  out[LOSS] = terms[0];
  out[A] = out[B_TARGET] = -st[G] * terms[1];
  out[B_MASS] = 0;
}
