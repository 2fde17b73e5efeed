/**
 * Tensors allocated in a backend's own memory: the zero-copy path. A loss given such a
 * tensor as its input (and, optionally, its `data` or another such tensor's as `gradInput`)
 * runs the kernel directly over wasm memory instead of copying the input in and the gradient
 * out.
 */
import { checkBackendOption, resolveBackend, type BackendName } from "./backend.js";
import { checkOptionNames } from "./options.js";
import { describeShape, formatShape, product, type Tensor } from "./tensor.js";

export interface AllocTensorOptions {
  /** The backend whose memory holds the tensor: 'simd', 'scalar' or 'js'; default: the
   * backend losses without a `backend` option use now. Use the tensor with losses on the
   * same backend. */
  backend?: BackendName;
}

/** The part of a wasm backend that holds tensors (structural, so that the public types need
 * neither the backend class nor the DOM's WebAssembly namespace). */
interface TensorHost {
  readonly name: string;
  readonly exports: { readonly memory: { readonly buffer: ArrayBufferLike } };
  allocTensorBytes(bytes: number): number;
  freeTensor(ptr: number): void;
}

const isTensorHost = (b: object): b is TensorHost => "allocTensorBytes" in b;

/** Frees tensors the program dropped without `free()` (a safety net: GC timing is unknown). */
const finalizer =
  typeof FinalizationRegistry === "function"
    ? new FinalizationRegistry<{ host: TensorHost; ptr: number }>(({ host, ptr }) => host.freeTensor(ptr))
    : undefined;

/**
 * A float32 tensor in a backend's memory. `data` is a view of it, rebuilt whenever wasm
 * memory has grown (growth detaches older views): read `tensor.data` again after any call
 * that may allocate (an `allocTensor`, a loss call on a larger input) rather than keeping a
 * view across calls. Call `free()` when done; a tensor that is garbage-collected without it
 * is freed too, eventually.
 */
export class AllocatedTensor implements Tensor {
  /** The tensor's shape (frozen). */
  readonly shape: readonly number[];
  /** Number of elements. */
  readonly length: number;
  /** The backend whose memory holds it. */
  readonly backend: BackendName;
  #host: TensorHost | undefined;
  #ptr: number;
  #view: Float32Array;
  #freed = false;

  /** @internal Use `allocTensor`. */
  constructor(shape: readonly number[], backend: BackendName, host: TensorHost | undefined) {
    this.shape = Object.freeze([...shape]);
    this.length = product(shape);
    this.backend = backend;
    this.#host = host;
    if (host) {
      this.#ptr = host.allocTensorBytes(4 * this.length);
      this.#view = new Float32Array(host.exports.memory.buffer, this.#ptr, this.length);
      finalizer?.register(this, { host, ptr: this.#ptr }, this);
    } else {
      this.#ptr = 0;
      this.#view = new Float32Array(this.length);
    }
  }

  /** The values: a Float32Array view of the tensor's memory (zeros after allocation). */
  get data(): Float32Array {
    if (this.#freed) throw new Error("fused-loss: this tensor was freed (free() was called); allocate another with allocTensor()");
    const host = this.#host;
    if (host && this.#view.buffer !== host.exports.memory.buffer) {
      this.#view = new Float32Array(host.exports.memory.buffer, this.#ptr, this.length);
    }
    return this.#view;
  }

  /** Whether `free()` was called. */
  get freed(): boolean {
    return this.#freed;
  }

  /** Releases the memory now. Calling it again does nothing; using the tensor after it throws. */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.#view = new Float32Array(0);
    if (this.#host) {
      finalizer?.unregister(this);
      this.#host.freeTensor(this.#ptr);
    }
  }
}

/**
 * Allocates a zero-filled float32 tensor of `shape` in the memory of a backend (default: the
 * one losses use now). Pass it as a loss's `input`, and its `data` as `gradInput`, for calls
 * that copy nothing; fill it through `tensor.data`. On the 'js' backend the tensor is an
 * ordinary Float32Array (there is nothing to copy anyway).
 */
export function allocTensor(shape: readonly number[], options: AllocTensorOptions = {}): AllocatedTensor {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new TypeError(`allocTensor: shape must be an array of non-negative integers, got ${describeShape(shape)}`);
  }
  checkOptionNames("allocTensor", options, ["backend"]);
  const n = product(shape);
  if (4 * n > 0xffff_0000) {
    throw new RangeError(`fused-loss: cannot allocate a tensor of shape ${formatShape(shape)} (${4 * n} bytes; wasm32 memory is limited to 4 GiB)`);
  }
  const backend = resolveBackend(checkBackendOption(options.backend));
  return new AllocatedTensor(shape, backend.name, isTensorHost(backend) ? backend : undefined);
}
