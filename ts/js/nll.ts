/**
 * NLL on log-probabilities in pure JS (the crate's `nll.rs`): the gradient is only at the
 * target. Each loss is rounded to float32 as the crate's (`Math.fround`), so the sum and
 * every value are the wasm kernel's bit for bit: the wasm backends run this for inputs
 * outside wasm memory (see `WasmBackend.nllLoss`).
 */
import type { NllArgs } from "../backend.js";

export function nllJs(args: NllArgs): number {
  const { outer, classes: C, inner: S } = args.layout;
  const x = args.input;
  const targets = args.target.classes;
  const w = args.weight;
  const up = args.upstream;
  const losses = args.losses;
  let acc = 0;
  for (let n = 0; n < outer; n++) {
    for (let s = 0; s < S; s++) {
      const pos = n * S + s;
      const t = targets[pos];
      const loss = t < 0 ? 0 : Math.fround(-(w ? w[t] : 1) * x[n * C * S + t * S + s]);
      if (losses) losses[pos] = loss;
      acc += loss;
    }
  }
  const grad = up === undefined ? undefined : args.grad;
  if (grad) {
    // Every target logit was read above, so `grad` may be the input itself.
    grad.fill(0);
    for (let n = 0; n < outer; n++) {
      for (let s = 0; s < S; s++) {
        const pos = n * S + s;
        const t = targets[pos];
        if (t < 0) continue;
        const g = typeof up === "number" ? up : up![pos];
        grad[n * C * S + t * S + s] = -(g * (w ? w[t] : 1));
      }
    }
  }
  return acc;
}
