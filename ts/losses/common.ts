/** What every loss class shares: reductions, the upstream gradient, and output buffers. */
import { checkBackendOption, resolveBackend, type Backend, type BackendName } from "../backend.js";
import type { Reduction } from "../options.js";
import { describe, detachedNote, formatShape } from "../tensor.js";

export interface BackwardOptions {
  /** Gradient of the final loss: a number for 'mean'/'sum' (default 1); for 'none' a
   * Float32Array with one value per loss element (default all ones) or one number for all. */
  gradOutput?: number | Float32Array;
  /** Caller-owned buffer for the gradient; pass `input.data` to compute it in place. */
  gradInput?: Float32Array;
}

export interface LossAndGrad<L = number | Float32Array> {
  loss: L;
  grad: Float32Array;
}

/** Options every loss accepts besides its own. */
export interface CommonOptions {
  /** Forces a backend for this loss ('simd', 'scalar' or 'js'); default: automatic. */
  backend?: BackendName;
}

export class LossBase {
  protected readonly backendName?: BackendName;

  constructor(backend: unknown) {
    this.backendName = checkBackendOption(backend);
  }

  /** The backend this loss runs on now. */
  get backend(): BackendName {
    return this.kernels().name;
  }

  protected kernels(): Backend {
    return resolveBackend(this.backendName);
  }
}

/**
 * The upstream gradient each position's loss receives: `gradOutput / denominator` for 'mean',
 * `gradOutput` for 'sum', the per-element array (or ones) for 'none'. `lossShape` is the
 * 'none' loss's shape (for messages).
 */
export function upstreamFor(
  owner: string,
  reduction: Reduction,
  gradOutput: number | Float32Array | undefined,
  nPositions: number,
  denominator: number,
  lossShape: readonly number[] = [nPositions],
): number | Float32Array {
  if (reduction === "none") {
    if (gradOutput === undefined) return 1;
    if (typeof gradOutput === "number") return gradOutput;
    if (!(gradOutput instanceof Float32Array)) {
      throw new TypeError(
        `${owner}: gradOutput must be a number or a Float32Array (one value per loss element) for reduction 'none', got ${describe(gradOutput)}`,
      );
    }
    if (gradOutput.length !== nPositions) {
      // PyTorch's autograd wording ("Mismatch in shape: grad_output[0] has a shape of ...").
      throw new RangeError(
        `${owner}: Mismatch in shape: gradOutput has a shape of [${gradOutput.length}] and the loss has a shape of ${formatShape(lossShape)} (${nPositions} elements).`,
      );
    }
    return gradOutput;
  }
  const g = gradOutput ?? 1;
  if (typeof g !== "number") {
    throw new TypeError(`${owner}: gradOutput must be a number for reduction '${reduction}' (the loss is a scalar), got ${describe(g)}`);
  }
  return reduction === "mean" ? Math.fround(g / denominator) : g;
}

/** Whether two arrays share any byte of memory. */
function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/**
 * The caller's gradient buffer (checked), or a new one. `input` is the input data: the
 * gradient may be computed over it exactly (in place) but not over a shifted view of it, and
 * must not overlap `others` (targets, gradOutput), which are read while it is written.
 */
export function gradBuffer(
  owner: string,
  gradInput: Float32Array | undefined,
  length: number,
  input?: Float32Array,
  others: Record<string, unknown> = {},
): Float32Array {
  if (gradInput === undefined) return new Float32Array(length);
  if (!(gradInput instanceof Float32Array)) throw new TypeError(`${owner}: gradInput must be a Float32Array, got ${describe(gradInput)}`);
  if (gradInput.length !== length) {
    throw new RangeError(`${owner}: gradInput has ${gradInput.length} elements but the input has ${length}${detachedNote(gradInput)}`);
  }
  const exact = input !== undefined && gradInput.buffer === input.buffer && gradInput.byteOffset === input.byteOffset;
  if (input && !exact && overlaps(gradInput, input)) {
    throw new RangeError(`${owner}: gradInput partly overlaps input.data; pass input.data itself for an in-place gradient, or a separate buffer`);
  }
  // (for…in: Object.entries would allocate its pairs on every call.)
  for (const name in others) {
    const other = others[name];
    if (ArrayBuffer.isView(other) && overlaps(gradInput, other)) {
      throw new RangeError(`${owner}: gradInput shares memory with ${name}, which is read while the gradient is written`);
    }
  }
  return gradInput;
}

/** The reduced loss as float32 PyTorch would return it. */
export function reduce(reduction: Reduction, sum: number, denominator: number, losses?: Float32Array): number | Float32Array {
  if (reduction === "none") return losses!;
  return Math.fround(reduction === "mean" ? sum / denominator : sum);
}
