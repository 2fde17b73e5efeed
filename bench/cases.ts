/**
 * What the benchmark runs: every loss on every shape, as one fused forward+backward call per
 * backend of this package, and the same loss written the way a TensorFlow.js user would write
 * it (tfjs's own losses where it has them, its ops where it has none).
 */
import type * as TF from "@tensorflow/tfjs";
// The built package, as users run it (scripts/bench.sh bundles this harness with dist/ external).
import * as fl from "../dist/index.js";
import { mulberry32 } from "../test/browser/mulberry32.js";

export const SHAPES: number[][] = [[1, 10], [32, 10], [256, 100], [1024, 1000], [1024, 32000], [8, 21, 128, 128]];

export type Runner = "simd zero-copy" | "simd" | "scalar" | "js" | "tfjs-wasm" | "tfjs-cpu";
export const RUNNERS: Runner[] = ["simd zero-copy", "simd", "scalar", "js", "tfjs-wasm", "tfjs-cpu"];

/** One prepared benchmark: `step()` is one forward+backward; `dispose()` frees what it holds. */
export interface Prepared {
  step(): void;
  /** The loss of one step (to check that every runner computes the same thing). */
  loss(): number;
  dispose(): void;
}

type FusedLoss = {
  forwardBackward(input: fl.Tensor, target: never, options?: fl.BackwardOptions): fl.LossAndGrad;
};

export interface LossCase {
  name: string;
  /** Class-axis losses take index targets; element-wise ones a target per element. */
  kind: "class" | "element";
  make(backend: fl.BackendName): FusedLoss;
  /** Input values: logits, log-probabilities or probabilities. */
  value(rand: () => number): number;
  /** The same loss (mean reduction) in TensorFlow.js ops: `x` has the class axis last. */
  tf(tf: typeof TF, x: TF.Tensor, y: TF.Tensor): TF.Scalar;
}

const logit = (r: () => number) => (r() - 0.5) * 8;

export const LOSSES: LossCase[] = [
  {
    name: "CrossEntropyLoss",
    kind: "class",
    make: (backend) => new fl.CrossEntropyLoss({ backend }) as unknown as FusedLoss,
    value: logit,
    tf: (tf, x, y) => tf.losses.softmaxCrossEntropy(y, x) as TF.Scalar,
  },
  {
    name: "FocalLoss",
    kind: "class",
    make: (backend) => new fl.FocalLoss({ backend, gamma: 2 }) as unknown as FusedLoss,
    value: logit,
    // tfjs has no focal loss: the module's formula in tfjs ops.
    tf: (tf, x, y) => {
      const logPt = tf.sum(tf.mul(tf.logSoftmax(x), y), -1);
      return tf.mean(tf.mul(tf.neg(tf.pow(tf.sub(1, tf.exp(logPt)), 2)), logPt)) as TF.Scalar;
    },
  },
  {
    name: "SigmoidFocalLoss",
    kind: "element",
    make: (backend) => new fl.SigmoidFocalLoss({ backend, reduction: "mean" }) as unknown as FusedLoss,
    value: logit,
    // torchvision's sigmoid_focal_loss in tfjs ops.
    tf: (tf, x, y) => {
      const p = tf.sigmoid(x);
      const ce = tf.losses.sigmoidCrossEntropy(y, x, undefined, 0, tf.Reduction.NONE);
      const pt = tf.add(tf.mul(p, y), tf.mul(tf.sub(1, p), tf.sub(1, y)));
      const alphaT = tf.add(tf.mul(0.25, y), tf.mul(0.75, tf.sub(1, y)));
      return tf.mean(tf.mul(tf.mul(ce, tf.square(tf.sub(1, pt))), alphaT)) as TF.Scalar;
    },
  },
  {
    name: "BCEWithLogitsLoss",
    kind: "element",
    make: (backend) => new fl.BCEWithLogitsLoss({ backend }) as unknown as FusedLoss,
    value: logit,
    tf: (tf, x, y) => tf.losses.sigmoidCrossEntropy(y, x) as TF.Scalar,
  },
  {
    name: "BCELoss",
    kind: "element",
    make: (backend) => new fl.BCELoss({ backend }) as unknown as FusedLoss,
    value: (r) => 0.02 + 0.96 * r(),
    tf: (tf, x, y) => tf.losses.logLoss(y, x) as TF.Scalar,
  },
  {
    name: "NLLLoss",
    kind: "class",
    make: (backend) => new fl.NLLLoss({ backend }) as unknown as FusedLoss,
    value: (r) => Math.log(0.001 + r()),
    tf: (tf, x, y) => tf.neg(tf.mean(tf.sum(tf.mul(x, y), -1))) as TF.Scalar,
  },
];

export const elementsOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Inputs of one (loss, shape), the same for every runner. */
export interface Data {
  shape: number[];
  input: Float32Array;
  /** Index targets (class losses) or one target per element. */
  target: Int32Array | Float32Array;
  targetShape: number[];
}

export function makeData(loss: LossCase, shape: number[], seed: number): Data {
  const rand = mulberry32(seed);
  const input = new Float32Array(elementsOf(shape));
  for (let i = 0; i < input.length; i++) input[i] = loss.value(rand);
  if (loss.kind === "element") {
    const target = new Float32Array(input.length);
    for (let i = 0; i < target.length; i++) target[i] = rand() < 0.1 ? 1 : 0;
    return { shape, input, target, targetShape: shape };
  }
  const targetShape = [shape[0], ...shape.slice(2)];
  const target = new Int32Array(elementsOf(targetShape));
  for (let i = 0; i < target.length; i++) target[i] = Math.floor(rand() * shape[1]);
  return { shape, input, target, targetShape };
}

/** One of this package's backends; `zeroCopy`: input, gradient and element targets in wasm memory. */
export function prepareFused(loss: LossCase, data: Data, backend: fl.BackendName, zeroCopy: boolean): Prepared {
  const f = loss.make(backend);
  if (!zeroCopy) {
    const input = { data: data.input, shape: data.shape };
    const target = { data: data.target, shape: data.targetShape } as never;
    const gradInput = new Float32Array(data.input.length);
    let last = 0;
    return {
      step: () => {
        last = f.forwardBackward(input, target, { gradInput }).loss as number;
      },
      loss: () => last,
      dispose: () => {},
    };
  }
  const input = fl.allocTensor(data.shape, { backend });
  input.data.set(data.input);
  const grad = fl.allocTensor(data.shape, { backend });
  const residentTarget = data.target instanceof Float32Array ? fl.allocTensor(data.targetShape, { backend }) : undefined;
  residentTarget?.data.set(data.target);
  let last = 0;
  return {
    step: () => {
      const target = { data: residentTarget ? residentTarget.data : data.target, shape: data.targetShape } as never;
      last = f.forwardBackward(input, target, { gradInput: grad.data }).loss as number;
    },
    loss: () => last,
    dispose: () => {
      input.free();
      grad.free();
      residentTarget?.free();
    },
  };
}

/**
 * The loss in TensorFlow.js on its active backend: upload the logits, value and gradient with
 * `tf.valueAndGrad`, download both (what a step that hands the gradient on costs). The
 * labels are uploaded once, outside the step (favouring tfjs), one-hot with the class axis
 * last, as tfjs users pass them.
 */
export function prepareTf(tf: typeof TF, loss: LossCase, data: Data): Prepared {
  const classes = loss.kind === "class" ? data.shape[1] : 1;
  const rows = data.input.length / classes;
  // tfjs's layout: class axis last. (N, C, H, W) becomes N·H·W rows of C (same work).
  const input = loss.kind === "class" ? classLast(data.input, data.shape) : data.input;
  const tfShape = loss.kind === "class" ? [rows, classes] : [data.input.length];
  const y =
    loss.kind === "class"
      ? tf.tidy(() => tf.oneHot(tf.tensor1d(data.target as Int32Array, "int32"), classes).toFloat())
      : tf.tensor(data.target as Float32Array, tfShape);
  const valueAndGrad = tf.valueAndGrad((x: TF.Tensor) => loss.tf(tf, x, y));
  let last = 0;
  return {
    step: () => {
      tf.tidy(() => {
        const x = tf.tensor(input, tfShape);
        const { value, grad } = valueAndGrad(x);
        last = value.dataSync()[0];
        grad.dataSync();
      });
    },
    loss: () => last,
    dispose: () => y.dispose(),
  };
}

/** `(N, C, d…)` data as `(N·d…, C)` rows. */
function classLast(data: Float32Array, shape: number[]): Float32Array {
  const [n, c] = shape;
  const inner = elementsOf(shape.slice(2));
  if (inner === 1) return data;
  const out = new Float32Array(data.length);
  for (let s = 0; s < n; s++) {
    for (let k = 0; k < c; k++) {
      const from = (s * c + k) * inner;
      for (let p = 0; p < inner; p++) out[(s * inner + p) * c + k] = data[from + p];
    }
  }
  return out;
}
