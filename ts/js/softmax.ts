/**
 * The pure-JS softmax sweep: the same math as the crate's `kernels/softmax.rs`, in float64.
 * One pass for the max, one for the exponentials and the mass sums (exponentials kept in the
 * gradient buffer), one that turns them into the gradient.
 */
import { IGNORED, type KernelIO } from "../backend.js";

/** Per-class mass `q_c` (see the crate's `Mass`): none, weights, or weighted probabilities. */
export type MassSpec =
  | { kind: "none" }
  | { kind: "weight"; weight?: Float32Array }
  | { kind: "prob"; probs: Float32Array; weight?: Float32Array; smoothing: number };

/**
 * A position's loss and gradient coefficients: `grad_c = a·p_c - bMass·q_c - [c = t]·bTarget`,
 * at indices `LOSS, A, B_MASS, B_TARGET` of a Float64Array (a typed array: writing a double
 * into an object field can box it, one allocation per position).
 */
export type Coeffs = Float64Array;
export const LOSS = 0;
export const A = 1;
export const B_MASS = 2;
export const B_TARGET = 3;

/**
 * Statistics of one position, at these indices of a Float64Array, relative to its reference
 * `ref` (the max when finite, else 0): `X_T` is `x_t - ref` and `LSE` is `log Σ exp x - ref`,
 * so `lse - xTarget = lse_true - x_t` without rounding `log Σ exp(x - ref)` into a huge max
 * (PyTorch's log_softmax computes `(x - max) - log Σ exp(x - max)`: logits `[1e20, 1e20]` give
 * `-ln 2`, not 0); `CROSS = Σ q·(lse_true - x)`, `MASS = Σ q`, `G` the upstream gradient.
 * Doubles go through typed arrays because `finish` is called once per position and doubles
 * passed as arguments to a call the engine does not inline are boxed (one allocation each).
 */
export type Stats = Float64Array;
export const X_T = 0;
export const LSE = 1;
export const CROSS = 2;
export const MASS = 3;
export const G = 4;

/**
 * Turns a position's stats into its coefficients; gets the call's arguments as `args`. A
 * module-level function, not a closure made per call: a fresh closure's optimised code is
 * held only by the closure (the feedback vector's link to it is weak), so every collection
 * freed it and the next call ran `finish` unoptimised until it was compiled again, boxing
 * its doubles (hundreds of KiB per call after a GC) wherever it is not inlined.
 */
export type Finish<Args> = (target: number, stats: Stats, out: Coeffs, args: Args) => void;

export function softmaxSweep<Args extends KernelIO>(io: Args, targets: Int32Array | undefined, mass: MassSpec, finish: Finish<Args>): number {
  const { outer, classes: C, inner: S } = io.layout;
  const x = io.input;
  const up = io.upstream;
  const grad = up === undefined ? undefined : io.grad;
  const losses = io.losses;
  const w = mass.kind === "none" ? undefined : mass.weight;
  const probs = mass.kind === "prob" ? mass.probs : undefined;
  const keep = mass.kind === "prob" ? 1 - mass.smoothing : 1;
  const spread = mass.kind === "prob" ? mass.smoothing / C : 0;
  const withMass = mass.kind !== "none";
  const co: Coeffs = new Float64Array(4);
  const st: Stats = new Float64Array(5);
  let acc = 0;
  for (let n = 0; n < outer; n++) {
    for (let s = 0; s < S; s++) {
      const base = n * C * S + s;
      const pos = n * S + s;
      const t = targets ? targets[pos] : IGNORED;
      // Read by `finish` only for t >= 0. (Not `NaN`: see NAN_NOTE in binary.ts.)
      const xT = t >= 0 ? x[base + t * S] : 0;
      let m = -Infinity;
      for (let c = 0, i = base; c < C; c++, i += S) {
        const v = x[i];
        if (v > m || v !== v) m = v; // NaN wins and stays, as PyTorch's max
      }
      const ref = m === -Infinity ? 0 : m;
      let sum = 0;
      let qx = 0;
      let qs = 0;
      for (let c = 0, i = base; c < C; c++, i += S) {
        const d = x[i] - ref;
        const e = Math.exp(d);
        sum += e;
        if (grad) grad[i] = e;
        if (withMass) {
          let q = w ? w[c] : 1;
          if (probs) q *= keep * probs[i] + spread;
          qx += q * d;
          qs += q;
        }
      }
      const lnSum = Math.log(sum);
      const g = up === undefined ? 0 : typeof up === "number" ? up : up[pos];
      st[X_T] = xT - ref;
      st[LSE] = lnSum;
      st[CROSS] = qs * lnSum - qx;
      st[MASS] = qs;
      st[G] = g;
      finish(t, st, co, io);
      const loss = co[LOSS];
      if (losses) losses[pos] = loss;
      acc += loss;
      if (grad) {
        // With a = 0 (no gradient: ignored, zero weight or gradOutput) the row stays 0, but
        // is NaN where PyTorch's softmax is NaN: NaN or +Infinity logits, and a row of only
        // -Infinity (`x - max = -inf + inf`), as its `0 - exp(logp)·0` (the wasm builds too).
        // `0 / sum` is 0, or NaN where sum is NaN or 0 (not the global `NaN`: see NAN_NOTE in
        // binary.ts); -0 is made +0.
        const a = co[A];
        const bMass = co[B_MASS];
        const factor = (a === 0 ? 0 : a) / sum;
        for (let c = 0, i = base; c < C; c++, i += S) {
          let v = grad[i] * factor;
          if (withMass) {
            let q = w ? w[c] : 1;
            if (probs) q *= keep * probs[i] + spread;
            v -= bMass * q;
          }
          grad[i] = v;
        }
        if (t >= 0) grad[base + t * S] -= co[B_TARGET];
      }
    }
  }
  return acc;
}
