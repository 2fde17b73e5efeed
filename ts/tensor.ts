/** Tensors as the API accepts them, and their validation. */

/** A dense row-major float32 tensor, PyTorch layout. */
export interface Tensor {
  data: Float32Array;
  shape: readonly number[];
}

/** Integer class-index containers accepted as targets. */
export type IndexArray = Int32Array | BigInt64Array | Uint8Array | number[];

/** A target given with its shape. */
export interface TargetTensor {
  data: IndexArray | Float32Array;
  shape: readonly number[];
}

export type TargetLike = IndexArray | Float32Array | TargetTensor;

/** A per-class or broadcastable weight. */
export type WeightLike = Float32Array | number[] | { data: Float32Array | number[]; shape: readonly number[] };

/** `(outer, classes, inner)`: PyTorch's `(N, C, d1..dK)` with `inner = d1·…·dK`. */
export interface Layout {
  outer: number;
  classes: number;
  inner: number;
}

export const positions = (l: Layout): number => l.outer * l.inner;
export const elements = (l: Layout): number => l.outer * l.classes * l.inner;

export function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A hint for an empty view whose memory is gone (often a wasm tensor's view kept across a memory growth). */
export function detachedNote(view: ArrayBufferView): string {
  return view.byteLength === 0 && view.buffer.byteLength === 0
    ? " (its ArrayBuffer is detached: a view of wasm memory taken before the memory grew? read tensor.data again)"
    : "";
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

function isShape(shape: unknown): shape is readonly number[] {
  return Array.isArray(shape) && shape.every((d) => Number.isInteger(d) && d >= 0);
}

/** Names a value's type for messages: a typed array's class, "Array", "null" or typeof. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  if (Array.isArray(value)) return "Array";
  return typeof value;
}

/** Shows a rejected shape: the array itself, or its type when it is not an array. */
export function describeShape(shape: unknown): string {
  if (!Array.isArray(shape)) return describe(shape);
  return `[${shape.map((d) => (typeof d === "number" ? String(d) : JSON.stringify(d) ?? String(d))).join(", ")}]`;
}

/** Checks that `value` is `{ data: Float32Array, shape }` with matching sizes. */
export function parseTensor(value: unknown, name: string): Tensor {
  if (typeof value !== "object" || value === null || !("data" in value) || !("shape" in value)) {
    throw new TypeError(`${name} must be { data: Float32Array, shape: number[] }, got ${describe(value)}`);
  }
  const { data, shape } = value as { data: unknown; shape: unknown };
  if (!(data instanceof Float32Array)) {
    // float32 only: the kernels and PyTorch's float32 results are what the package matches.
    const hint = ArrayBuffer.isView(data) || Array.isArray(data) ? " (convert with Float32Array.from)" : "";
    throw new TypeError(`${name}.data must be a Float32Array, got ${describe(data)}${hint}`);
  }
  if (!isShape(shape)) {
    throw new TypeError(`${name}.shape must be an array of non-negative integers, got ${describeShape(shape)}`);
  }
  if (product(shape) !== data.length) {
    throw new RangeError(
      `${name}.data has ${data.length} elements but ${name}.shape ${formatShape(shape)} needs ${product(shape)}${detachedNote(data)}`,
    );
  }
  return { data, shape };
}

/** The class-axis layout of an input of shape `(C)`, `(N, C)` or `(N, C, d1..dK)`. */
export function classLayout(shape: readonly number[], name = "input"): Layout {
  if (shape.length === 0) {
    throw new RangeError(`${name} must have at least 1 dimension (the class axis), got shape []`);
  }
  if (shape.length === 1) return { outer: 1, classes: shape[0], inner: 1 };
  return { outer: shape[0], classes: shape[1], inner: product(shape.slice(2)) };
}

/** A shape without its class axis: the shape of per-position targets and 'none' losses. */
export function positionShape(shape: readonly number[]): number[] {
  return shape.length === 1 ? [] : [shape[0], ...shape.slice(2)];
}

/** Unwraps a weight into a Float32Array (copying only when it is not one already). */
export function parseWeight(value: WeightLike, name: string): { data: Float32Array; shape: readonly number[] } {
  let data: unknown = value;
  let shape: readonly number[] | undefined;
  if (!Array.isArray(value) && !(value instanceof Float32Array)) {
    if (typeof value !== "object" || value === null || !("data" in value)) {
      throw new TypeError(`${name} must be a Float32Array, a number[] or { data, shape }, got ${describe(value)}`);
    }
    data = value.data;
    shape = value.shape;
    if (!isShape(shape)) throw new TypeError(`${name}.shape must be an array of non-negative integers, got ${describeShape(shape)}`);
  }
  let arr: Float32Array;
  // A copy: validated once here, later changes to the caller's array cannot bypass the checks.
  if (data instanceof Float32Array) arr = data.slice();
  else if (Array.isArray(data) && data.every((v) => typeof v === "number")) arr = Float32Array.from(data);
  else throw new TypeError(`${name} must hold numbers (Float32Array or number[]), got ${describe(data)}`);
  shape ??= [arr.length];
  if (product(shape) !== arr.length) {
    throw new RangeError(`${name} has ${arr.length} elements but its shape ${formatShape(shape)} needs ${product(shape)}`);
  }
  // PyTorch accepts NaN and ±Infinity weights and returns NaN/±Infinity losses for every batch
  // holding that class; that is always a bug upstream, so it is an error here (documented).
  const bad = arr.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new RangeError(`${name}[${bad}] = ${arr[bad]}: weights must be finite`);
  return { data: arr, shape };
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
