/** Cross-entropy in pure JS over the shared softmax sweep (math as in the crate's `cross_entropy.rs`). */
import type { CrossEntropyArgs } from "../backend.js";
import { softmaxSweep, type Finish } from "./softmax.js";

export function crossEntropyJs(args: CrossEntropyArgs): number {
  const { target, weight, labelSmoothing: eps } = args;
  if (target.kind === "prob") {
    const finish: Finish = (_p, _t, _x, _lse, cross, mass, g, out) => {
      out.loss = cross;
      out.a = g * mass;
      out.bMass = g;
      out.bTarget = 0;
    };
    return softmaxSweep(args, undefined, { kind: "prob", probs: target.probs, weight, smoothing: eps }, finish);
  }
  const beta = eps / args.layout.classes;
  const finish: Finish = (_p, t, xT, lse, cross, mass, g, out) => {
    if (t < 0) {
      out.loss = out.a = out.bMass = out.bTarget = 0;
      return;
    }
    const alpha = (1 - eps) * (weight ? weight[t] : 1);
    const nll = lse - xT;
    if (eps === 0) {
      out.loss = alpha * nll;
      out.a = out.bTarget = g * alpha;
      out.bMass = 0;
      return;
    }
    out.loss = alpha * nll + beta * cross;
    out.a = g * (alpha + beta * mass);
    out.bMass = g * beta;
    out.bTarget = g * alpha;
  };
  const mass = eps > 0 ? ({ kind: "weight", weight } as const) : ({ kind: "none" } as const);
  return softmaxSweep(args, target.classes, mass, finish);
}
