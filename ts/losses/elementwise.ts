/**
 * What the element-wise losses share (BCEWithLogitsLoss, BCELoss, SigmoidFocalLoss): any input
 * shape, a target of the same shape, one loss per element, 'mean' over every element.
 */
import type { Backend, BinaryIO, BroadcastArg } from "../backend.js";
import { checkOptionNames, type Reduction } from "../options.js";
import { describe, describeShape, formatShape, parseTensor, parseWeight, product, sameShape, type Tensor, type WeightLike } from "../tensor.js";
import { broadcastTo, type Operands } from "../broadcast.js";
import { LossBase, gradBuffer, reduce, upstreamFor, type BackwardOptions, type LossAndGrad } from "./common.js";

/** A target for an element-wise loss: values of the input's shape (soft targets allowed). */
export type ElementTargetLike = Float32Array | Float64Array | number[] | { data: Float32Array | Float64Array | number[]; shape: readonly number[] };

/**
 * Validates an element-wise target: a bare array needs the input's number of elements (it has
 * no shape), `{ data, shape }` the input's shape. `mismatch` words the error as PyTorch does.
 */
export function parseElementTarget(
  owner: string,
  target: unknown,
  inputShape: readonly number[],
  mismatch: (targetShape: string, inputShape: string) => string,
): Float32Array {
  let data: unknown = target;
  let shape: readonly number[] | undefined;
  if (!ArrayBuffer.isView(target) && !Array.isArray(target)) {
    if (typeof target !== "object" || target === null || !("data" in target) || !("shape" in target)) {
      throw new TypeError(`${owner}: target must be a Float32Array, a number[] or { data, shape }, got ${describe(target)}`);
    }
    ({ data, shape } = target as { data: unknown; shape: readonly number[] });
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new TypeError(`${owner}: target.shape must be an array of non-negative integers, got ${describeShape(shape)}`);
    }
  }
  let values: Float32Array;
  if (data instanceof Float32Array) values = data;
  else if (Array.isArray(data) && data.every((v) => typeof v === "number")) values = Float32Array.from(data);
  else if (data instanceof BigInt64Array) values = Float32Array.from(data, Number);
  else if (ArrayBuffer.isView(data) && !(data instanceof DataView) && !(data instanceof BigUint64Array)) {
    values = Float32Array.from(data as unknown as ArrayLike<number>);
  } else throw new TypeError(`${owner}: target must hold numbers (Float32Array or number[]), got ${describe(data)}`);
  if (shape !== undefined && product(shape) !== values.length) {
    throw new RangeError(`target.data has ${values.length} elements but target.shape ${formatShape(shape)} needs ${product(shape)}`);
  }
  const ok = shape === undefined ? values.length === product(inputShape) : sameShape(shape, inputShape);
  if (!ok) throw new RangeError(mismatch(formatShape(shape ?? [values.length]), formatShape(inputShape)));
  return values;
}

/** A weight option of an element-wise loss: unwrapped and validated once, broadcast per input shape. */
export class BroadcastWeight {
  readonly data: Float32Array;
  readonly shape: readonly number[];
  private lastShape?: readonly number[];
  private last?: BroadcastArg;

  constructor(value: WeightLike, name: string) {
    const w = parseWeight(value, name);
    this.data = w.data;
    this.shape = w.shape;
  }

  /** The kernel form for an input of `shape` (cached for the last shape seen). */
  against(shape: readonly number[], operands: Operands): BroadcastArg {
    if (!this.last || !sameShape(this.lastShape!, shape)) {
      this.last = broadcastTo(this.data, this.shape, shape, operands);
      this.lastShape = shape.slice();
    }
    return this.last;
  }
}

/** Base of the element-wise loss classes: parsing, reduction, backward, output buffers. */
export abstract class ElementwiseLoss extends LossBase {
  abstract readonly reduction: Reduction;
  protected abstract readonly owner: string;

  /** PyTorch's message for a target whose size differs from the input's. */
  protected abstract sizeMismatch(targetShape: string, inputShape: string): string;

  /** Checks the input's values where the loss has a domain (BCELoss: [0, 1]). */
  protected checkInput(_input: Float32Array): void {}

  /** Runs the loss's kernel; returns the sum of the elements' losses. */
  protected abstract kernel(backend: Backend, io: BinaryIO, shape: readonly number[]): number;

  /** The loss: a number for 'mean'/'sum', a Float32Array (one per element) for 'none'. */
  forward(input: Tensor, target: ElementTargetLike): number | Float32Array {
    return this.run(input, target, undefined).loss;
  }

  /** Loss and gradient with respect to `input.data`, in one fused call. */
  forwardBackward(input: Tensor, target: ElementTargetLike, options: BackwardOptions = {}): LossAndGrad {
    checkOptionNames(`${this.owner}.forwardBackward`, options, ["gradOutput", "gradInput"]);
    return this.run(input, target, options) as LossAndGrad;
  }

  private run(inputLike: Tensor, targetLike: unknown, backward: BackwardOptions | undefined): { loss: number | Float32Array; grad?: Float32Array } {
    const input = parseTensor(inputLike, "input");
    const target = parseElementTarget(this.owner, targetLike, input.shape, (t, i) => this.sizeMismatch(t, i));
    this.checkInput(input.data);
    const n = input.data.length;
    const losses = this.reduction === "none" ? new Float32Array(n) : undefined;
    const io: BinaryIO = { layout: { outer: n, classes: 1, inner: 1 }, input: input.data, target, losses };
    if (backward) {
      io.upstream = upstreamFor(this.owner, this.reduction, backward.gradOutput, n, n, input.shape);
      io.grad = gradBuffer(this.owner, backward.gradInput, n, input.data, { target, gradOutput: backward.gradOutput });
    }
    const sum = this.kernel(this.kernels(), io, input.shape);
    // 'mean' of no elements is NaN (0 / 0), as torch.mean.
    return { loss: reduce(this.reduction, sum, n, losses), grad: io.grad };
  }
}
