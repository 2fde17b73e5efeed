/**
 * PyTorch's broadcasting of a weight against an element-wise loss's input (BCEWithLogitsLoss's
 * `weight` and `pos_weight`, BCELoss's `weight`), with its error messages, and the form the
 * kernels take: element `i` gets `values[floor(i / repeat) % values.length]`.
 */
import type { BroadcastArg } from "./backend.js";
import { formatShape, product, sameShape } from "./tensor.js";

/**
 * Which tensor PyTorch calls "a" in its size-mismatch message: the loss (input-shaped) for
 * `loss.mul_(weight)` and BCELoss's `_infer_size(target, weight)`, the weight for
 * BCEWithLogitsLoss's `(pos_weight - 1).mul(target)`.
 */
export type Operands = "input, weight" | "weight, input";

/**
 * Checks that a weight of shape `wShape` broadcasts to `inputShape` without growing it (PyTorch
 * applies it in place to an input-shaped tensor), and returns its kernel form: the weight
 * itself with a `repeat` when its non-broadcast dimensions are contiguous (`(C)` over the last
 * axis, `(N, 1)`, `(C, 1, 1)`, a scalar, the input's own shape), else a copy expanded to the
 * input's size.
 */
export function broadcastTo(values: Float32Array, wShape: readonly number[], inputShape: readonly number[], operands: Operands): BroadcastArg {
  const rank = Math.max(wShape.length, inputShape.length);
  const [aShape, bShape] = operands === "input, weight" ? [inputShape, wShape] : [wShape, inputShape];
  const at = (shape: readonly number[], i: number): number => {
    const j = i - (rank - shape.length);
    return j >= 0 ? shape[j] : 1;
  };
  // ATen's infer_size, last dimension first.
  const out = new Array<number>(rank);
  for (let i = rank - 1; i >= 0; i--) {
    const a = at(aShape, i);
    const b = at(bShape, i);
    if (a !== b && a !== 1 && b !== 1) {
      throw new RangeError(`The size of tensor a (${a}) must match the size of tensor b (${b}) at non-singleton dimension ${i}`);
    }
    out[i] = a === 1 ? b : a;
  }
  if (!sameShape(out, inputShape)) {
    throw new RangeError(`output with shape ${formatShape(inputShape)} doesn't match the broadcast shape ${formatShape(out)}`);
  }
  const w = inputShape.map((_, d) => at(wShape, d));
  let first = -1;
  let last = -1;
  w.forEach((size, d) => {
    if (size !== 1) {
      if (first < 0) first = d;
      last = d;
    }
  });
  if (first < 0) return { values, repeat: 1 };
  let contiguous = true;
  for (let d = first; d <= last; d++) if (w[d] !== inputShape[d]) contiguous = false;
  if (contiguous) return { values, repeat: product(inputShape.slice(last + 1)) };
  return { values: expand(values, w, inputShape), repeat: 1 };
}

/** The weight (shape `w`, padded to the input's rank) expanded to the input's shape. */
function expand(values: Float32Array, w: readonly number[], shape: readonly number[]): Float32Array {
  const rank = shape.length;
  const strides = new Array<number>(rank).fill(0);
  for (let d = rank - 1, s = 1; d >= 0; d--) {
    strides[d] = w[d] === 1 ? 0 : s;
    s *= w[d];
  }
  const out = new Float32Array(product(shape));
  const index = new Array<number>(rank).fill(0);
  let k = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = values[k];
    for (let d = rank - 1; d >= 0; d--) {
      k += strides[d];
      if (++index[d] < shape[d]) break;
      k -= strides[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}
