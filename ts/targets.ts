/** Target validation and conversion, with PyTorch's decisions and wording. */
import { IGNORED, type IndexTargetArg, type ProbTargetArg } from "./backend.js";
import {
  describeShape,
  formatShape,
  positionShape,
  product,
  sameShape,
  type IndexArray,
  type Layout,
  type TargetLike,
} from "./tensor.js";

/** A reusable Int32 buffer for converted targets (grows, never shrinks: no per-call allocation). */
let scratch = new Int32Array(1024);
function scratchInt32(n: number): Int32Array {
  if (scratch.length < n) scratch = new Int32Array(Math.max(n, scratch.length * 2));
  return scratch.subarray(0, n);
}

function isFloatArray(a: unknown): a is Float32Array | Float64Array {
  return a instanceof Float32Array || a instanceof Float64Array;
}

function isIndexArray(a: unknown): a is IndexArray {
  return a instanceof Int32Array || a instanceof BigInt64Array || a instanceof Uint8Array || Array.isArray(a);
}

/** Names a value's type for messages: the typed array's class, "number[]", or typeof. */
function typeName(a: unknown): string {
  if (a === null) return "null";
  if (ArrayBuffer.isView(a)) return a.constructor.name;
  return Array.isArray(a) ? "number[]" : typeof a;
}

function unsupportedTarget(rules: TargetRules, data: unknown): TypeError {
  const kinds = "class indices (Int32Array, BigInt64Array, Uint8Array or number[])" + (rules.allowProb ? " or class probabilities (Float32Array)" : "");
  return new TypeError(`${rules.owner}: target must hold ${kinds}, got ${typeName(data)}`);
}

/** PyTorch's dtype names (for its own messages). */
function dtypeName(a: unknown): string {
  if (a instanceof Float32Array) return "Float";
  if (a instanceof Float64Array) return "Double";
  if (a instanceof Int32Array) return "Int";
  if (a instanceof BigInt64Array) return "Long";
  if (a instanceof Uint8Array) return "Byte";
  return Array.isArray(a) ? "number[]" : typeof a;
}

export interface TargetRules {
  /** The loss's name for messages. */
  owner: string;
  /** Whether probability targets are allowed (CrossEntropyLoss). */
  allowProb: boolean;
}

/**
 * Decides the target kind as PyTorch does (same shape as the input: probabilities; otherwise
 * class indices; a bare array by its type) and checks its shape.
 */
export function targetKind(target: TargetLike, inputShape: readonly number[], rules: TargetRules): "index" | "prob" {
  if (typeof target !== "object" || target === null) {
    throw new TypeError(`${rules.owner}: target must be a typed array, a number[] or { data, shape }, got ${target === null ? "null" : typeof target}`);
  }
  if (!ArrayBuffer.isView(target) && !Array.isArray(target)) {
    if (!("data" in target) || !("shape" in target)) {
      throw new TypeError(`${rules.owner}: target must be a typed array, a number[] or { data, shape }, got an object without ${"data" in target ? "shape" : "data"}`);
    }
    const { data, shape } = target as { data: unknown; shape: unknown };
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new TypeError(`${rules.owner}: target.shape must be an array of non-negative integers, got ${describeShape(shape)}`);
    }
    if (!isFloatArray(data) && !isIndexArray(data)) throw unsupportedTarget(rules, data);
    if (rules.allowProb && sameShape(shape, inputShape)) {
      if (!isFloatArray(data) && !Array.isArray(data)) {
        throw new TypeError(`Expected floating point type for target with class probabilities, got ${dtypeName(data)} (${typeName(data)})`);
      }
      return "prob";
    }
    if (isFloatArray(data)) {
      throw new TypeError(
        `${rules.owner}: a Float32Array target is taken as class probabilities and needs the input's shape ${formatShape(inputShape)}, got ${formatShape(shape)}` +
          (rules.allowProb ? "" : " (this loss takes class indices: Int32Array, BigInt64Array, Uint8Array or number[])"),
      );
    }
    return "index";
  }
  if (isFloatArray(target)) {
    if (!rules.allowProb) {
      throw new TypeError(`${rules.owner}: expected class indices (Int32Array, BigInt64Array, Uint8Array or number[]), got ${typeName(target)}`);
    }
    return "prob";
  }
  if (!isIndexArray(target)) throw unsupportedTarget(rules, target);
  return "index";
}

/** Checks an index target's shape against the input's, in PyTorch's order and wording (nll_loss_nd). */
function checkIndexShape(data: ArrayLike<unknown>, shape: readonly number[] | undefined, inputShape: readonly number[]): void {
  const expected = positionShape(inputShape);
  if (shape === undefined) {
    // A bare array has no shape: only its length can be checked.
    if (data.length === product(expected)) return;
    if (inputShape.length === 2) {
      throw new RangeError(`Expected input batch_size (${inputShape[0]}) to match target batch_size (${data.length}).`);
    }
    throw new RangeError(
      `target has ${data.length} elements but an input of shape ${formatShape(inputShape)} needs ${product(expected)} (shape ${formatShape(expected)})`,
    );
  }
  if (product(shape) !== data.length) {
    throw new RangeError(`target.data has ${data.length} elements but target.shape ${formatShape(shape)} needs ${product(shape)}`);
  }
  const dim = inputShape.length;
  if (dim !== 1 && (shape.length === 0 || shape[0] !== inputShape[0])) {
    throw new RangeError(`Expected input batch_size (${inputShape[0]}) to match target batch_size (${shape.length === 0 ? 0 : shape[0]}).`);
  }
  if (dim <= 2) {
    if (shape.length > 1) throw new RangeError("0D or 1D target tensor expected, multi-target not supported");
    // Unbatched input: a 0-d target only (PyTorch rejects shape [1] too).
    if (dim === 1 && shape.length !== 0) {
      throw new RangeError(`size mismatch (got input: ${formatShape(inputShape)}, target: ${formatShape(shape)})`);
    }
    return;
  }
  if (dim === 4) {
    // PyTorch's nll_loss2d wording, verbatim (its unbalanced parenthesis included).
    if (shape.length !== 3) {
      throw new RangeError(`only batches of spatial targets supported (3D tensors) but got targets of dimension: ${shape.length}`);
    }
    if (!sameShape(shape, expected)) {
      throw new RangeError(`size mismatch (got input: ${formatShape(inputShape)} , target: ${formatShape(shape)}`);
    }
    return;
  }
  if (!sameShape(shape, expected)) throw new RangeError(`Expected target size ${formatShape(expected)}, got ${formatShape(shape)}`);
}

export interface IndexTargetResult {
  target: IndexTargetArg;
  /** Σ weight[t] over positions not ignored (their count without weights): 'mean' divides by it. */
  weightSum: number;
}

/**
 * Validates class indices (integers in `0..C`, or the ignore index) and converts them to
 * Int32 with ignored positions marked [`IGNORED`].
 */
export function parseIndexTarget(
  target: TargetLike,
  inputShape: readonly number[],
  layout: Layout,
  ignoreIndex: number,
  weight: Float32Array | undefined,
): IndexTargetResult {
  const shaped = !ArrayBuffer.isView(target) && !Array.isArray(target);
  const data = (shaped ? (target as { data: IndexArray }).data : target) as IndexArray;
  checkIndexShape(data, shaped ? (target as { shape: readonly number[] }).shape : undefined, inputShape);
  const out = scratchInt32(data.length);
  const weightSum = convertIndices(data, out, layout.classes, ignoreIndex, weight);
  return { target: { kind: "index", classes: out }, weightSum };
}

/**
 * Checks and copies the indices into `out`, returning Σ weight[t]. A function of its own, so
 * that the engine's on-stack-replaced code for the loop ends with a plain number: ending in
 * the caller's object literal, which that code had no feedback for, it was thrown away and
 * rebuilt on every call (time, and heap allocations per call).
 */
function convertIndices(data: IndexArray, out: Int32Array, C: number, ignoreIndex: number, weight: Float32Array | undefined): number {
  const n = data.length;
  let weightSum = 0;
  const ignoreBig = BigInt.asIntN(64, BigInt(Math.trunc(ignoreIndex)));
  for (let i = 0; i < n; i++) {
    const raw = data[i];
    let t: number;
    if (typeof raw === "bigint") {
      if (raw === ignoreBig) {
        out[i] = IGNORED;
        continue;
      }
      if (raw < 0n || raw >= BigInt(C)) throw new RangeError(`Target ${raw} is out of bounds.`);
      t = Number(raw);
    } else {
      t = raw as number;
      if (t === ignoreIndex) {
        out[i] = IGNORED;
        continue;
      }
      if (!Number.isInteger(t)) {
        const shown = typeof raw === "number" ? String(raw) : `${JSON.stringify(raw) ?? String(raw)} (${typeof raw})`;
        throw new TypeError(`target[${i}] = ${shown} is not an integer class index`);
      }
      if (t < 0 || t >= C) throw new RangeError(`Target ${t} is out of bounds.`);
    }
    out[i] = t;
    weightSum += weight ? weight[t] : 1;
  }
  return weightSum;
}

/** Validates class probabilities: a float array with the input's number of elements. */
export function parseProbTarget(target: TargetLike, inputElements: number, owner: string): ProbTargetArg {
  const shaped = !ArrayBuffer.isView(target) && !Array.isArray(target);
  const data = shaped ? (target as { data: unknown }).data : target;
  let probs: Float32Array;
  if (data instanceof Float32Array) probs = data;
  else if (data instanceof Float64Array || Array.isArray(data)) probs = Float32Array.from(data as ArrayLike<number>);
  else throw new TypeError(`${owner}: probability targets must be a Float32Array, got ${typeName(data)}`);
  if (probs.length !== inputElements) {
    throw new RangeError(`${owner}: target has ${probs.length} elements but the input has ${inputElements}; class probabilities need the input's shape`);
  }
  return { kind: "prob", probs };
}
