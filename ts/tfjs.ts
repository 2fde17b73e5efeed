/**
 * fused-loss/tfjs: the package's losses as TensorFlow.js loss functions, for `model.compile({ loss })`
 * and for custom loops (`tf.variableGrads`, `optimizer.minimize`).
 *
 * Each call reads the logits once (`dataSync`), runs the fused kernel once (loss and gradient in one
 * sweep), and hands tfjs the stored gradient through `tf.customGrad`. tfjs conventions throughout:
 * class axis last (`[batch, ..., classes]`), labels as tfjs users pass them (one-hot, class
 * probabilities, or class indices for the `sparse*` losses).
 *
 * The core losses come from the main entry ("fused-loss"), not a bundled copy, so `setBackend()`,
 * `configure()` and the loaded wasm are shared with it.
 */
import { clipByValue, customGrad, log, log1p, neg, scalar, sub, tensor, tidy, type Scalar, type Tensor } from "@tensorflow/tfjs-core";
import { CrossEntropyLoss, type BackendName, type LossAndGrad, type Reduction, type TargetLike, type Tensor as FlatTensor, type WeightLike } from "fused-loss";
import { checkOptionNames, parseNumber, parseReduction } from "./options.js";

export type { Reduction };

/**
 * A tfjs loss: `(yTrue, yPred) => loss`. A scalar for 'mean' and 'sum'; for 'none', one value per
 * position (`yPred.shape` without the class axis) for the softmax losses, one per element for the
 * sigmoid losses.
 */
export type TfjsLoss<R extends Reduction = "mean"> = (yTrue: Tensor, yPred: Tensor) => R extends "none" ? Tensor : Scalar;

/** Options every adapter loss takes. */
export interface AdapterOptions<R extends Reduction = "mean"> {
  /**
   * Whether `yPred` holds logits (default `true`, unlike Keras: the fused kernels take logits, so a
   * model's last layer should have no softmax/sigmoid activation). `false` accepts probabilities,
   * clipped to `[1e-7, 1 - 1e-7]` as Keras does and turned into logits by tfjs ops before the loss.
   */
  fromLogits?: boolean;
  /** 'mean' (default, over positions/elements, as tfjs's losses), 'sum' or 'none'. */
  reduction?: R;
  /** Forces the fused backend ('simd', 'scalar' or 'js'); default automatic. */
  backend?: BackendName;
}

export interface CategoricalCrossentropyOptions<R extends Reduction = "mean"> extends AdapterOptions<R> {
  /** In `[0, 1]`: labels become `y·(1 − s) + s/C`, the same formula in PyTorch, Keras and `tf.losses.softmaxCrossEntropy`. */
  labelSmoothing?: number;
  /** Per-class weights, length C, with PyTorch's semantics ('mean' divides by the weights of the targets). */
  weight?: WeightLike;
}

export interface SparseCategoricalCrossentropyOptions<R extends Reduction = "mean"> extends CategoricalCrossentropyOptions<R> {
  /** Labels equal to it contribute nothing and do not count in the mean. Default -100. */
  ignoreIndex?: number;
}

/** Keras's `epsilon()`: how far probabilities are kept from 0 and 1 when `fromLogits` is false. */
const EPSILON = 1e-7;

const ADAPTER_OPTIONS = ["fromLogits", "reduction", "backend"] as const;

type Family = "softmax" | "sigmoid";

/** What the adapter needs of a core loss: one fused call. */
interface FusedCore {
  forwardBackward(input: FlatTensor, target: TargetLike): LossAndGrad;
}

interface Spec {
  owner: string;
  /** 'softmax': the last axis is the class axis; 'sigmoid': every element is its own logit. */
  family: Family;
  core: FusedCore;
  fromLogits: boolean;
  /** The core's target for these labels (read and validated here); `classes` is 1 for 'sigmoid'. */
  target(yTrue: Tensor, predShape: readonly number[], classes: number): TargetLike;
}

interface Parsed<R extends Reduction> {
  reduction: R;
  fromLogits: boolean;
  backend?: BackendName;
}

function parseAdapterOptions<R extends Reduction>(owner: string, options: AdapterOptions<R>, own: readonly string[]): Parsed<R> {
  checkOptionNames(owner, options, [...ADAPTER_OPTIONS, ...own]);
  const fromLogits = options.fromLogits ?? true;
  if (typeof fromLogits !== "boolean") throw new TypeError(`${owner}: fromLogits must be a boolean, got ${typeof fromLogits}`);
  return { reduction: parseReduction(options.reduction) as R, fromLogits, backend: options.backend };
}

const shapeText = (shape: readonly number[]): string => `[${shape.join(", ")}]`;
const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

function checkPrediction(owner: string, yPred: Tensor, family: Family): void {
  if (yPred.dtype !== "float32") throw new TypeError(`${owner}: yPred must be a float32 tensor, got ${yPred.dtype}`);
  if (family === "softmax" && yPred.rank === 0) {
    throw new RangeError(`${owner}: yPred must have a class axis (the last one), got a scalar`);
  }
}

/** Probabilities to logits with tfjs ops, so tfjs differentiates the conversion. */
function toLogits(family: Family, probs: Tensor): Tensor {
  if (family === "softmax") return log(clipByValue(probs, EPSILON, 1)); // softmax(log p) = p / Σp
  const p = clipByValue(probs, EPSILON, 1 - EPSILON);
  return sub(log(p), log1p(neg(p))); // sigmoid(log p − log(1 − p)) = p
}

/**
 * The gradient for upstream `dy`: the fused gradient was computed for an upstream of 1 (per
 * loss element for 'none'), and is linear in it.
 */
function scaleGrad(grad: Float32Array, dy: Tensor): Float32Array {
  const upstream = dy.dataSync();
  if (upstream.length === 1 && upstream[0] === 1) return grad;
  const row = grad.length / upstream.length; // gradient values per loss element
  const out = new Float32Array(grad.length);
  for (let e = 0, j = 0; e < upstream.length; e++) {
    const s = upstream[e];
    for (const end = j + row; j < end; j++) out[j] = grad[j] * s;
  }
  return out;
}

/** The tfjs loss function for a core loss. */
function adapt<R extends Reduction>(spec: Spec): TfjsLoss<R> {
  const fused = (yTrue: Tensor, yPred: Tensor): Tensor => {
    const predShape = yPred.shape;
    const classes = spec.family === "softmax" ? predShape[predShape.length - 1] : 1;
    // Class axis last and contiguous: an (N·d1·…·dK, C) view is PyTorch's (N, C) layout as is.
    const inputShape = spec.family === "softmax" ? [classes === 0 ? 0 : yPred.size / classes, classes] : predShape;
    const lossShape = spec.family === "softmax" ? predShape.slice(0, -1) : predShape;
    const target = spec.target(yTrue, predShape, classes);
    return customGrad((logits) => {
      const data = (logits as Tensor).dataSync() as Float32Array;
      const { loss, grad } = spec.core.forwardBackward({ data, shape: inputShape }, target);
      const value = typeof loss === "number" ? scalar(loss) : tensor(loss, lossShape);
      return { value, gradFunc: (dy: Tensor) => tensor(scaleGrad(grad, dy), predShape) };
    })(yPred);
  };
  return ((yTrue: Tensor, yPred: Tensor) => {
    checkPrediction(spec.owner, yPred, spec.family);
    if (spec.fromLogits) return fused(yTrue, yPred);
    return tidy(() => fused(yTrue, toLogits(spec.family, yPred)));
  }) as TfjsLoss<R>;
}

/** One-hot or soft labels with the predictions' shape, as a float array. */
function probabilityLabels(owner: string, yTrue: Tensor, predShape: readonly number[]): Float32Array {
  if (!sameShape(yTrue.shape, predShape)) {
    const positions = predShape.slice(0, -1);
    const sparse = sameShape(yTrue.shape, positions) || sameShape(yTrue.shape, [...positions, 1]);
    throw new RangeError(
      `${owner}: labels of shape ${shapeText(yTrue.shape)} must have the predictions' shape ${shapeText(predShape)} (one-hot or class probabilities, class axis last)` +
        (sparse ? `; for class indices use the sparse form of this loss` : ""),
    );
  }
  const values = yTrue.dataSync();
  return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
}

/** Class indices of shape `yPred.shape` without the class axis (or with a trailing 1), as Int32. */
function sparseLabels(owner: string, yTrue: Tensor, predShape: readonly number[]): Int32Array {
  const positions = predShape.slice(0, -1);
  if (!sameShape(yTrue.shape, positions) && !sameShape(yTrue.shape, [...positions, 1])) {
    throw new RangeError(
      `${owner}: labels of shape ${shapeText(yTrue.shape)} do not fit predictions of shape ${shapeText(predShape)}: class indices need shape ${shapeText(positions)} or ${shapeText([...positions, 1])}` +
        (sameShape(yTrue.shape, predShape) ? "; for one-hot labels use the non-sparse form of this loss" : ""),
    );
  }
  const values = yTrue.dataSync();
  if (values instanceof Int32Array) return values;
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    // tfjs labels are usually float32; a fractional one is a mistake, not a class.
    if (!Number.isInteger(v)) throw new TypeError(`${owner}: label ${v} at position ${i} is not an integer class index`);
    out[i] = v;
  }
  return out;
}

function checkLabelSmoothing(owner: string, value: unknown): number {
  const s = parseNumber(owner, "labelSmoothing", value, 0);
  if (!(s >= 0 && s <= 1)) throw new RangeError(`${owner}: labelSmoothing must be between 0.0 and 1.0. Got: ${s}`);
  return s;
}

/**
 * Softmax cross-entropy on one-hot or soft labels (Keras `categorical_crossentropy`, tfjs
 * `tf.losses.softmaxCrossEntropy`), fused: PyTorch's `cross_entropy` with probability targets.
 */
export function categoricalCrossentropy<R extends Reduction = "mean">(options: CategoricalCrossentropyOptions<R> = {}): TfjsLoss<R> {
  const owner = "categoricalCrossentropy";
  const o = parseAdapterOptions(owner, options, ["labelSmoothing", "weight"]);
  const core = new CrossEntropyLoss({
    reduction: o.reduction,
    labelSmoothing: checkLabelSmoothing(owner, options.labelSmoothing),
    weight: options.weight,
    backend: o.backend,
  });
  return adapt<R>({
    owner,
    family: "softmax",
    core,
    fromLogits: o.fromLogits,
    target: (yTrue, predShape, classes) => ({
      data: probabilityLabels(owner, yTrue, predShape),
      shape: [yTrue.size / Math.max(classes, 1), classes],
    }),
  });
}

/**
 * Softmax cross-entropy on integer class indices (Keras `sparse_categorical_crossentropy`), fused:
 * exactly PyTorch's `cross_entropy` with index targets.
 */
export function sparseCategoricalCrossentropy<R extends Reduction = "mean">(options: SparseCategoricalCrossentropyOptions<R> = {}): TfjsLoss<R> {
  const owner = "sparseCategoricalCrossentropy";
  const o = parseAdapterOptions(owner, options, ["labelSmoothing", "weight", "ignoreIndex"]);
  const core = new CrossEntropyLoss({
    reduction: o.reduction,
    labelSmoothing: checkLabelSmoothing(owner, options.labelSmoothing),
    weight: options.weight,
    ignoreIndex: options.ignoreIndex,
    backend: o.backend,
  });
  return adapt<R>({ owner, family: "softmax", core, fromLogits: o.fromLogits, target: (yTrue, predShape) => sparseLabels(owner, yTrue, predShape) });
}
