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
import {
  BCEWithLogitsLoss,
  CrossEntropyLoss,
  FocalLoss,
  SigmoidFocalLoss,
  type BackendName,
  type ElementTargetLike,
  type FocalGradient,
  type LossAndGrad,
  type Reduction,
  type TargetLike,
  type Tensor as FlatTensor,
  type WeightLike,
} from "fused-loss";
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

export interface CategoricalFocalLossOptions<R extends Reduction = "mean"> extends AdapterOptions<R> {
  /** Focusing parameter, >= 0. Default 2; 0 is cross-entropy. */
  gamma?: number;
  /**
   * Per-class weights (one per class), or a number `a` meaning `[a, 1 − a]` for two classes
   * (class 0 gets `a`), as the PyTorch `FocalLoss` module. Never enters the 'mean' denominator.
   */
  alpha?: number | WeightLike | null;
  /** Per-class weights with PyTorch's semantics ('mean' divides by the weights of the targets). */
  weight?: WeightLike;
  /** 'full' (default): the true gradient; 'detached': p_t held constant in backward, as that module. */
  gradient?: FocalGradient;
}

export interface SparseCategoricalFocalLossOptions<R extends Reduction = "mean"> extends CategoricalFocalLossOptions<R> {
  /** Labels equal to it contribute nothing and do not count in the mean. Default -100. */
  ignoreIndex?: number;
}

export interface SigmoidFocalLossOptions<R extends Reduction = "mean"> extends AdapterOptions<R> {
  /** Weight of the positive class in [0, 1]; `null` or a negative number disables it. Default 0.25. */
  alpha?: number | null;
  /** Focusing parameter, >= 0. Default 2. */
  gamma?: number;
}

export interface BinaryCrossentropyOptions<R extends Reduction = "mean"> extends AdapterOptions<R> {
  /** In `[0, 1]`: labels become `y·(1 − s) + s/2`, as Keras and `tf.losses.sigmoidCrossEntropy`. */
  labelSmoothing?: number;
  /** Rescaling weight, broadcast against `yPred` as PyTorch does (a 1-D array along the last axis). */
  weight?: WeightLike;
  /** Weight of the positive term, broadcast the same way (usually one per output, last axis). */
  posWeight?: WeightLike;
}

/** Keras's `epsilon()`: how far probabilities are kept from 0 and 1 when `fromLogits` is false. */
const EPSILON = 1e-7;

const ADAPTER_OPTIONS = ["fromLogits", "reduction", "backend"] as const;

type Family = "softmax" | "sigmoid";

/** What the adapter needs of a core loss: one fused call. */
interface FusedCore<T> {
  forwardBackward(input: FlatTensor, target: T): LossAndGrad;
}

interface Spec<T> {
  owner: string;
  /** 'softmax': the last axis is the class axis; 'sigmoid': every element is its own logit. */
  family: Family;
  core: FusedCore<T>;
  fromLogits: boolean;
  /** The core's target for these labels (read and validated here); `classes` is 1 for 'sigmoid'. */
  target(yTrue: Tensor, predShape: readonly number[], classes: number): T;
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

/**
 * A tensor's values as a Float32Array: tfjs's CPU backend may hold a float32 tensor's values in
 * an Int32Array (after a cast from int32, as `tf.oneHot(...).toFloat()`), so dtype is not proof.
 */
function float32(values: ArrayLike<number | string | Uint8Array>): Float32Array {
  return values instanceof Float32Array ? values : new Float32Array(values as ArrayLike<number>);
}

/** The tfjs loss function for a core loss. */
function adapt<R extends Reduction, T>(spec: Spec<T>): TfjsLoss<R> {
  const fused = (yTrue: Tensor, yPred: Tensor): Tensor => {
    const predShape = yPred.shape;
    const classes = spec.family === "softmax" ? predShape[predShape.length - 1] : 1;
    // Class axis last and contiguous: an (N·d1·…·dK, C) view is PyTorch's (N, C) layout as is.
    const inputShape = spec.family === "softmax" ? [classes === 0 ? 0 : yPred.size / classes, classes] : predShape;
    const lossShape = spec.family === "softmax" ? predShape.slice(0, -1) : predShape;
    const target = spec.target(yTrue, predShape, classes);
    return customGrad((logits) => {
      const data = float32((logits as Tensor).dataSync());
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
  return float32(yTrue.dataSync());
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

/** One-hot labels to class indices: focal loss takes one class per position. */
function oneHotLabels(owner: string, yTrue: Tensor, predShape: readonly number[], classes: number): Int32Array {
  const probs = probabilityLabels(owner, yTrue, predShape);
  const out = new Int32Array(classes === 0 ? 0 : probs.length / classes);
  for (let p = 0; p < out.length; p++) {
    let hot = -1;
    for (let c = 0, i = p * classes; c < classes; c++, i++) {
      const v = probs[i];
      if (v === 1 && hot === -1) hot = c;
      else if (v !== 0) hot = -2;
    }
    if (hot < 0) {
      throw new RangeError(
        `${owner}: the labels of position ${p} are not one-hot (one 1, the rest 0); soft labels have no focal form here, so pass one class per position (or class indices to the sparse form)`,
      );
    }
    out[p] = hot;
  }
  return out;
}

/** Labels for an element-wise (sigmoid) loss: the predictions' shape, or without a trailing 1. */
function elementLabels(owner: string, yTrue: Tensor, predShape: readonly number[], smoothing = 0): ElementTargetLike {
  if (!sameShape(yTrue.shape, predShape) && !sameShape([...yTrue.shape, 1], predShape)) {
    throw new RangeError(`${owner}: labels of shape ${shapeText(yTrue.shape)} must have the predictions' shape ${shapeText(predShape)}`);
  }
  let data = float32(yTrue.dataSync());
  if (smoothing > 0) data = data.map((y) => y * (1 - smoothing) + 0.5 * smoothing);
  return { data, shape: predShape };
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
  return adapt<R, TargetLike>({
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
  return adapt<R, TargetLike>({ owner, family: "softmax", core, fromLogits: o.fromLogits, target: (yTrue, predShape) => sparseLabels(owner, yTrue, predShape) });
}

/**
 * Softmax focal loss on one-hot labels (Keras's `CategoricalFocalCrossentropy` has the same
 * per-position form, with a scalar alpha): PyTorch's `FocalLoss` module, fused.
 */
export function categoricalFocalLoss<R extends Reduction = "mean">(options: CategoricalFocalLossOptions<R> = {}): TfjsLoss<R> {
  const owner = "categoricalFocalLoss";
  const o = parseAdapterOptions(owner, options, ["gamma", "alpha", "weight", "gradient"]);
  const core = new FocalLoss({ ...focalCoreOptions(options), reduction: o.reduction, backend: o.backend });
  return adapt<R, TargetLike>({ owner, family: "softmax", core, fromLogits: o.fromLogits, target: (yTrue, predShape, classes) => oneHotLabels(owner, yTrue, predShape, classes) });
}

/** Softmax focal loss on integer class indices: PyTorch's `FocalLoss` module, fused. */
export function sparseCategoricalFocalLoss<R extends Reduction = "mean">(options: SparseCategoricalFocalLossOptions<R> = {}): TfjsLoss<R> {
  const owner = "sparseCategoricalFocalLoss";
  const o = parseAdapterOptions(owner, options, ["gamma", "alpha", "weight", "gradient", "ignoreIndex"]);
  const core = new FocalLoss({ ...focalCoreOptions(options), ignoreIndex: options.ignoreIndex, reduction: o.reduction, backend: o.backend });
  return adapt<R, TargetLike>({ owner, family: "softmax", core, fromLogits: o.fromLogits, target: (yTrue, predShape) => sparseLabels(owner, yTrue, predShape) });
}

function focalCoreOptions(options: CategoricalFocalLossOptions<Reduction>): { gamma?: number; alpha?: number | WeightLike | null; weight?: WeightLike; gradient?: FocalGradient } {
  return { gamma: options.gamma, alpha: options.alpha, weight: options.weight, gradient: options.gradient };
}

/**
 * Sigmoid focal loss for binary and multi-label outputs, labels in [0, 1] of the predictions'
 * shape: exactly `torchvision.ops.sigmoid_focal_loss`, fused, except that the default reduction
 * is 'mean' (torchvision's is 'none').
 */
export function sigmoidFocalLoss<R extends Reduction = "mean">(options: SigmoidFocalLossOptions<R> = {}): TfjsLoss<R> {
  const owner = "sigmoidFocalLoss";
  const o = parseAdapterOptions(owner, options, ["alpha", "gamma"]);
  const core = new SigmoidFocalLoss({ alpha: options.alpha, gamma: options.gamma, reduction: o.reduction, backend: o.backend });
  return adapt<R, ElementTargetLike>({ owner, family: "sigmoid", core, fromLogits: o.fromLogits, target: (yTrue, predShape) => elementLabels(owner, yTrue, predShape) });
}

/**
 * Sigmoid cross-entropy for binary and multi-label outputs (Keras `binary_crossentropy`, tfjs
 * `tf.losses.sigmoidCrossEntropy`): PyTorch's `BCEWithLogitsLoss`, fused; 'mean' is over every
 * element.
 */
export function binaryCrossentropy<R extends Reduction = "mean">(options: BinaryCrossentropyOptions<R> = {}): TfjsLoss<R> {
  const owner = "binaryCrossentropy";
  const o = parseAdapterOptions(owner, options, ["labelSmoothing", "weight", "posWeight"]);
  const smoothing = checkLabelSmoothing(owner, options.labelSmoothing);
  const core = new BCEWithLogitsLoss({ weight: options.weight, posWeight: options.posWeight, reduction: o.reduction, backend: o.backend });
  return adapt<R, ElementTargetLike>({ owner, family: "sigmoid", core, fromLogits: o.fromLogits, target: (yTrue, predShape) => elementLabels(owner, yTrue, predShape, smoothing) });
}
