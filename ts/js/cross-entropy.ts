/** Cross-entropy in pure JS over the shared softmax sweep (math as in the crate's `cross_entropy.rs`). */
import type { CrossEntropyArgs } from "../backend.js";
import { A, B_MASS, B_TARGET, CROSS, G, LOSS, LSE, MASS, X_T, softmaxSweep, type Coeffs, type Stats } from "./softmax.js";

export function crossEntropyJs(args: CrossEntropyArgs): number {
  const { target, weight, labelSmoothing: eps } = args;
  if (target.kind === "prob") {
    return softmaxSweep(args, undefined, { kind: "prob", probs: target.probs, weight, smoothing: eps }, finishProb);
  }
  const mass = eps > 0 ? ({ kind: "weight", weight } as const) : ({ kind: "none" } as const);
  return softmaxSweep(args, target.classes, mass, finishIndex);
}

function finishProb(_t: number, st: Stats, out: Coeffs): void {
  const g = st[G];
  out[LOSS] = st[CROSS];
  out[A] = g * st[MASS];
  out[B_MASS] = g;
  out[B_TARGET] = 0;
}

function finishIndex(t: number, st: Stats, out: Coeffs, args: CrossEntropyArgs): void {
  if (t < 0) {
    out.fill(0);
    return;
  }
  const eps = args.labelSmoothing;
  const weight = args.weight;
  const alpha = (1 - eps) * (weight ? weight[t] : 1);
  const nll = st[LSE] - st[X_T];
  const g = st[G];
  if (eps === 0) {
    out[LOSS] = alpha * nll;
    out[A] = out[B_TARGET] = g * alpha;
    out[B_MASS] = 0;
    return;
  }
  const beta = eps / args.layout.classes;
  out[LOSS] = alpha * nll + beta * st[CROSS];
  out[A] = g * (alpha + beta * st[MASS]);
  out[B_MASS] = g * beta;
  out[B_TARGET] = g * alpha;
}
