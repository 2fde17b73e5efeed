/**
 * fused-loss/tfjs against TensorFlow.js itself, on tfjs's CPU and WASM backends: losses and
 * gradients (through tf.grad / tf.variableGrads) equal tfjs's own losses, training with
 * model.fit and optimizer.minimize lowers the loss, and no step leaks a tensor.
 */
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { createRequire } from "node:module";
import { dirname, sep } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { CrossEntropyLoss, FocalLoss, SigmoidFocalLoss, type BackendName, type LossAndGrad } from "../ts/index.js";
import * as adapter from "../ts/tfjs.js";
import { expectClose } from "./helpers.js";
import { prng as rng } from "./random-cases.js";

const require = createRequire(import.meta.url);
// tfjs's wasm backend in Node reads its binary from a file path; no network needed.
setWasmPaths(dirname(require.resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm")) + sep);

const TF_BACKENDS = ["cpu", "wasm"] as const;
const FUSED_BACKENDS: BackendName[] = ["simd", "scalar", "js"];

function randomLogits(shape: number[], seed: number, scale = 3): tf.Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale), shape);
}

function randomClasses(n: number, classes: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * classes));
}

/** Random class distributions along the last axis. */
function randomSoftLabels(shape: number[], seed: number): tf.Tensor {
  return tf.tidy(() => tf.softmax(randomLogits(shape, seed, 2)));
}

type LossFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

/** Loss and gradient of `sum(loss · upstream)` (or of the loss when no upstream) w.r.t. the logits. */
function lossAndGrad(f: LossFn, yTrue: tf.Tensor, logits: tf.Tensor, upstream?: tf.Tensor): { loss: tf.Tensor; grad: tf.Tensor } {
  const loss = f(yTrue, logits);
  const grad = tf.grad((x: tf.Tensor) => (upstream ? tf.sum(tf.mul(f(yTrue, x), upstream)) : f(yTrue, x)))(logits);
  return { loss, grad };
}

function expectSame(ours: LossFn, reference: LossFn, yTrue: tf.Tensor, logits: tf.Tensor, what: string, upstream?: tf.Tensor): void {
  tf.tidy(() => {
    const a = lossAndGrad(ours, yTrue, logits, upstream);
    const b = lossAndGrad(reference, yTrue, logits, upstream);
    expect(a.loss.shape, `${what}: loss shape`).toEqual(b.loss.shape);
    expectClose(a.loss.dataSync(), b.loss.dataSync(), `${what}: loss`);
    expect(a.grad.shape, `${what}: grad shape`).toEqual(logits.shape);
    expectClose(a.grad.dataSync(), b.grad.dataSync(), `${what}: grad`);
  });
}

const tfSoftmaxCE =
  (labelSmoothing = 0, reduction = tf.Reduction.SUM_BY_NONZERO_WEIGHTS): LossFn =>
  (y, x) =>
    tf.losses.softmaxCrossEntropy(y, x, undefined, labelSmoothing, reduction);

/** tfjs's softmaxCrossEntropy on one-hot versions of sparse labels. */
const tfSparseCE =
  (classes: number, labelSmoothing = 0, reduction?: tf.Reduction): LossFn =>
  (y, x) =>
    tfSoftmaxCE(labelSmoothing, reduction)(tf.oneHot(tf.cast(tf.reshape(y, x.shape.slice(0, -1)), "int32"), classes), x);

/**
 * The softmax focal loss composed from tfjs ops, autodiffed by tfjs: -α[t]·(1 − p_t)^γ·log p_t,
 * mean over positions (an independent reference for loss and gradient).
 */
const tfFocal =
  (classes: number, gamma: number, alpha?: number[]): LossFn =>
  (y, x) => {
    const oneHot = tf.oneHot(tf.cast(tf.reshape(y, [-1]), "int32"), classes);
    const logpt = tf.sum(tf.mul(tf.logSoftmax(tf.reshape(x, [-1, classes])), oneHot), -1);
    let loss = tf.mul(tf.neg(tf.pow(tf.sub(1, tf.exp(logpt)), gamma)), logpt);
    if (alpha) loss = tf.mul(loss, tf.sum(tf.mul(oneHot, tf.tensor(alpha)), -1));
    return tf.mean(loss);
  };

/** torchvision's sigmoid_focal_loss composed from tfjs ops, mean over elements. */
const tfSigmoidFocal =
  (gamma: number, alpha: number | null): LossFn =>
  (t, x) => {
    const p = tf.sigmoid(x);
    const ce = tf.losses.sigmoidCrossEntropy(t, x, undefined, 0, tf.Reduction.NONE);
    const pt = tf.add(tf.mul(p, t), tf.mul(tf.sub(1, p), tf.sub(1, t)));
    let loss = tf.mul(ce, tf.pow(tf.sub(1, pt), gamma));
    if (alpha !== null) loss = tf.mul(loss, tf.add(tf.mul(alpha, t), tf.mul(1 - alpha, tf.sub(1, t))));
    return tf.mean(loss);
  };

/** Checks the adapter's loss and gradient against a core class called directly on the same data. */
function expectCore(ours: LossFn, core: (data: Float32Array) => LossAndGrad, yTrue: tf.Tensor, logits: tf.Tensor, what: string): void {
  tf.tidy(() => {
    const expected = core(logits.dataSync() as Float32Array);
    const { loss, grad } = lossAndGrad(ours, yTrue, logits);
    expectClose(loss.dataSync(), typeof expected.loss === "number" ? [expected.loss] : expected.loss, `${what}: loss`);
    expectClose(grad.dataSync(), expected.grad, `${what}: grad`);
  });
}

function randomBinaryLabels(shape: number[], seed: number, soft = false): tf.Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => (soft ? r() : r() < 0.3 ? 1 : 0)), shape);
}

for (const tfBackend of TF_BACKENDS) {
  describe(`tfjs '${tfBackend}' backend`, () => {
    beforeAll(async () => {
      expect(await tf.setBackend(tfBackend)).toBe(true);
      await tf.ready();
    });

    describe("categoricalCrossentropy equals tf.losses.softmaxCrossEntropy", () => {
      it("one-hot labels, [8, 5]", () => {
        const logits = randomLogits([8, 5], 1);
        const labels = tf.oneHot(randomClasses(8, 5, 2), 5);
        expectSame(adapter.categoricalCrossentropy(), tfSoftmaxCE(), labels, logits, "one-hot");
      });

      it("soft labels, [6, 4], and large logits", () => {
        expectSame(adapter.categoricalCrossentropy(), tfSoftmaxCE(), randomSoftLabels([6, 4], 3), randomLogits([6, 4], 4, 30), "soft");
      });

      for (const smoothing of [0.1, 0.25, 1]) {
        it(`labelSmoothing ${smoothing} (the same formula as tfjs for [N, C])`, () => {
          const logits = randomLogits([7, 6], 5);
          const labels = tf.oneHot(randomClasses(7, 6, 6), 6);
          expectSame(adapter.categoricalCrossentropy({ labelSmoothing: smoothing }), tfSoftmaxCE(smoothing), labels, logits, "smoothed");
        });
      }

      it("rank 4, [2, 3, 4, 5], class axis last", () => {
        const labels = tf.oneHot(tf.tensor(randomClasses(24, 5, 8), [2, 3, 4], "int32"), 5);
        expectSame(adapter.categoricalCrossentropy(), tfSoftmaxCE(), labels, randomLogits([2, 3, 4, 5], 7), "rank 4");
      });

      it("rank 3 with labelSmoothing: smooths over the C classes; tfjs's own op divides by shape[1] instead", () => {
        const logits = randomLogits([2, 3, 5], 9);
        const labels = tf.oneHot(tf.tensor(randomClasses(6, 5, 10), [2, 3], "int32"), 5);
        const ours = adapter.categoricalCrossentropy({ labelSmoothing: 0.2 });
        // tfjs on the (N·L, C) view is the right reference: there shape[1] is C.
        const onRows: LossFn = (y, x) => tfSoftmaxCE(0.2)(tf.reshape(y, [-1, 5]), tf.reshape(x, [-1, 5]));
        expectSame(ours, onRows, labels, logits, "rank 3 smoothed");
        const tfRank3 = tfSoftmaxCE(0.2)(labels, logits).dataSync()[0];
        expect(Math.abs(tfRank3 - ours(labels, logits).dataSync()[0])).toBeGreaterThan(1e-3);
      });
    });

    describe("sparseCategoricalCrossentropy equals softmaxCrossEntropy on one-hot labels", () => {
      const logits = () => randomLogits([9, 4], 11);
      const classes = randomClasses(9, 4, 12);

      it("float32 labels [N] (tfjs's default dtype)", () => {
        expectSame(adapter.sparseCategoricalCrossentropy(), tfSparseCE(4), tf.tensor(classes), logits(), "float32 [N]");
      });

      it("int32 labels [N, 1] (Keras's sparse shape)", () => {
        expectSame(adapter.sparseCategoricalCrossentropy(), tfSparseCE(4), tf.tensor(classes, [9, 1], "int32"), logits(), "int32 [N, 1]");
      });

      it("rank 3 [3, 5, 6] with labels [3, 5] and labelSmoothing 0.1", () => {
        const x = randomLogits([3, 5, 6], 13);
        const y = tf.tensor(randomClasses(15, 6, 14), [3, 5]);
        const onRows: LossFn = (yy, xx) => tfSparseCE(6, 0.1)(tf.reshape(yy, [-1]), tf.reshape(xx, [-1, 6]));
        expectSame(adapter.sparseCategoricalCrossentropy({ labelSmoothing: 0.1 }), onRows, y, x, "rank 3 sparse");
      });

      it("per-class weight: PyTorch's weighted mean Σ w[t]·loss / Σ w[t]", () => {
        const w = [0.5, 2, 1, 3];
        const reference: LossFn = (y, x) => {
          const perRow = tfSparseCE(4, 0, tf.Reduction.NONE)(y, x);
          const wt = tf.gather(tf.tensor(w), tf.cast(y, "int32"));
          return tf.div(tf.sum(tf.mul(perRow, wt)), tf.sum(wt));
        };
        expectSame(adapter.sparseCategoricalCrossentropy({ weight: w }), reference, tf.tensor(classes), logits(), "weighted");
      });

      it("ignoreIndex: ignored rows get no loss and zero gradient; the mean is over the others", () => {
        const labels = classes.map((c, i) => (i % 3 === 1 ? -100 : c));
        const mask = tf.tensor(labels.map((c) => (c === -100 ? 0 : 1)));
        const reference: LossFn = (_, x) => {
          const perRow = tfSparseCE(4, 0, tf.Reduction.NONE)(tf.tensor(labels.map((c) => Math.max(c, 0))), x);
          return tf.div(tf.sum(tf.mul(perRow, mask)), tf.sum(mask));
        };
        expectSame(adapter.sparseCategoricalCrossentropy(), reference, tf.tensor(labels), logits(), "ignoreIndex");
      });
    });

    describe("reductions and upstream gradients", () => {
      const x = () => randomLogits([6, 3], 21);
      const y = () => tf.oneHot(randomClasses(6, 3, 22), 3);

      it("'sum' equals Reduction.SUM", () => {
        expectSame(adapter.categoricalCrossentropy({ reduction: "sum" }), tfSoftmaxCE(0, tf.Reduction.SUM), y(), x(), "sum");
      });

      it("'none' equals Reduction.NONE, with a different upstream gradient per row", () => {
        const upstream = tf.tensor([1, -2, 0.5, 0, 3, 1.5]);
        expectSame(adapter.categoricalCrossentropy({ reduction: "none" }), tfSoftmaxCE(0, tf.Reduction.NONE), y(), x(), "none", upstream);
      });

      it("'none' on rank 3 returns one loss per position, shape [N, L]", () => {
        const logits = randomLogits([2, 4, 3], 23);
        const labels = tf.tensor(randomClasses(8, 3, 24), [2, 4]);
        const upstream = randomLogits([2, 4], 25, 1);
        const onRows: LossFn = (yy, xx) =>
          tf.reshape(tfSparseCE(3, 0, tf.Reduction.NONE)(tf.reshape(yy, [-1]), tf.reshape(xx, [-1, 3])), [2, 4]);
        expectSame(adapter.sparseCategoricalCrossentropy({ reduction: "none" }), onRows, labels, logits, "none rank 3", upstream);
      });

      it("a scaled loss scales the gradient", () => {
        const scaled =
          (f: LossFn): LossFn =>
          (yy, xx) =>
            tf.mul(f(yy, xx), 3);
        expectSame(scaled(adapter.categoricalCrossentropy()), scaled(tfSoftmaxCE()), y(), x(), "3·loss");
      });
    });

    it("predictions and labels cast from int32 (whose values tfjs's CPU backend keeps in an Int32Array)", () => {
      const logits = tf.cast(tf.tensor([[2, -1, 0], [0, 3, 1], [-2, 0, 4]], [3, 3], "int32"), "float32");
      const labels = tf.cast(tf.oneHot([0, 2, 2], 3), "float32");
      expectSame(adapter.categoricalCrossentropy(), tfSoftmaxCE(), labels, logits, "cast");
      expectSame(adapter.binaryCrossentropy(), (y, x) => tf.losses.sigmoidCrossEntropy(y, x), labels, logits, "cast binary");
    });

    it("the gradient tfjs receives is the fused kernel's gradient, bit for bit", () => {
      const logits = randomLogits([5, 7], 31);
      const classes = randomClasses(5, 7, 32);
      const fused = new CrossEntropyLoss({ labelSmoothing: 0.05 }).forwardBackward(
        { data: logits.dataSync() as Float32Array, shape: [5, 7] },
        Int32Array.from(classes),
      );
      const grad = tf.grad((x: tf.Tensor) => adapter.sparseCategoricalCrossentropy({ labelSmoothing: 0.05 })(tf.tensor(classes), x))(logits);
      expect(Array.from(grad.dataSync())).toEqual(Array.from(fused.grad));
      expect(adapter.sparseCategoricalCrossentropy({ labelSmoothing: 0.05 })(tf.tensor(classes), logits).dataSync()[0]).toBe(fused.loss);
    });

    for (const backend of FUSED_BACKENDS) {
      it(`fused backend '${backend}' gives tfjs's loss and gradient`, () => {
        const labels = tf.oneHot(randomClasses(10, 9, 42), 9);
        expectSame(adapter.categoricalCrossentropy({ backend }), tfSoftmaxCE(), labels, randomLogits([10, 9], 41), backend);
      });
    }

    it("tf.variableGrads through a linear model equals tfjs's", () => {
      const x = randomLogits([12, 4], 51, 1);
      const labels = tf.oneHot(randomClasses(12, 3, 52), 3);
      const w = tf.variable(randomLogits([4, 3], 53, 0.5));
      const b = tf.variable(tf.zeros([3]));
      const grads = (f: LossFn) => tf.variableGrads(() => f(labels, tf.add(tf.matMul(x, w), b)) as tf.Scalar, [w, b]);
      const ours = grads(adapter.categoricalCrossentropy());
      const ref = grads(tfSoftmaxCE());
      expectClose(ours.value.dataSync(), ref.value.dataSync(), "value");
      for (const v of [w, b]) expectClose(ours.grads[v.name].dataSync(), ref.grads[v.name].dataSync(), v.name);
      tf.dispose([ours.value, ref.value, ...Object.values(ours.grads), ...Object.values(ref.grads), w, b]);
    });

    describe("fromLogits: false takes probabilities, like tfjs-layers' losses", () => {
      it("categoricalCrossentropy equals tf.metrics.categoricalCrossentropy (gradient through softmax)", () => {
        const labels = tf.oneHot(randomClasses(8, 5, 62), 5);
        const mean =
          (f: LossFn): LossFn =>
          (y, x) =>
            tf.mean(f(y, tf.softmax(x)));
        expectSame(mean(adapter.categoricalCrossentropy({ fromLogits: false })), mean(tf.metrics.categoricalCrossentropy), labels, randomLogits([8, 5], 61), "probabilities");
      });

      it("sparseCategoricalCrossentropy equals tf.metrics.categoricalCrossentropy on one-hot labels", () => {
        const labels = tf.tensor(randomClasses(8, 5, 64));
        const ours: LossFn = (y, x) => adapter.sparseCategoricalCrossentropy({ fromLogits: false })(y, tf.softmax(x));
        const reference: LossFn = (y, x) => tf.mean(tf.metrics.categoricalCrossentropy(tf.oneHot(tf.cast(y, "int32"), 5), tf.softmax(x)));
        expectSame(ours, reference, labels, randomLogits([8, 5], 63), "sparse probabilities");
      });
    });

    describe("focal losses equal the core classes and a tfjs-composed reference", () => {
      for (const gamma of [0, 0.5, 2, 5]) {
        it(`sparseCategoricalFocalLoss γ=${gamma} with per-class alpha, [10, 4]`, () => {
          const alpha = [0.25, 0.5, 0.75, 1];
          const logits = randomLogits([10, 4], 101 + gamma);
          const classes = randomClasses(10, 4, 102);
          const ours = adapter.sparseCategoricalFocalLoss({ gamma, alpha });
          expectCore(ours, (data) => new FocalLoss({ gamma, alpha }).forwardBackward({ data, shape: [10, 4] }, Int32Array.from(classes)), tf.tensor(classes), logits, `γ=${gamma}`);
          expectSame(ours, tfFocal(4, gamma, alpha), tf.tensor(classes), logits, `γ=${gamma} vs tfjs ops`);
        });
      }

      it("categoricalFocalLoss on one-hot labels equals the sparse form; γ=0 is cross-entropy", () => {
        const logits = randomLogits([3, 4, 5], 111);
        const classes = tf.tensor(randomClasses(12, 5, 112), [3, 4], "int32");
        const sparse: LossFn = (_, x) => adapter.sparseCategoricalFocalLoss({ gamma: 1.5 })(classes, x);
        expectSame(adapter.categoricalFocalLoss({ gamma: 1.5 }), sparse, tf.oneHot(classes, 5), logits, "one-hot");
        expectSame(adapter.categoricalFocalLoss({ gamma: 0 }), tfSoftmaxCE(), tf.oneHot(classes, 5), logits, "γ=0");
      });

      it("alpha as a number is [alpha, 1 − alpha] for two classes; gradient 'detached' is the module's", () => {
        const logits = randomLogits([8, 2], 121);
        const classes = randomClasses(8, 2, 122);
        for (const gradient of ["full", "detached"] as const) {
          const ours = adapter.sparseCategoricalFocalLoss({ alpha: 0.25, gradient });
          expectCore(ours, (data) => new FocalLoss({ alpha: 0.25, gradient }).forwardBackward({ data, shape: [8, 2] }, Int32Array.from(classes)), tf.tensor(classes), logits, gradient);
        }
        expectSame(adapter.sparseCategoricalFocalLoss({ alpha: 0.25 }), tfFocal(2, 2, [0.25, 0.75]), tf.tensor(classes), logits, "alpha pair vs tfjs ops");
      });

      it("'none' with a different upstream gradient per position, rank 3", () => {
        const logits = randomLogits([2, 3, 4], 131);
        const classes = tf.tensor(randomClasses(6, 4, 132), [2, 3]);
        const reference: LossFn = (y, x) => {
          const oneHot = tf.oneHot(tf.cast(y, "int32"), 4);
          const logpt = tf.sum(tf.mul(tf.logSoftmax(x), oneHot), -1);
          return tf.mul(tf.neg(tf.pow(tf.sub(1, tf.exp(logpt)), 2)), logpt);
        };
        expectSame(adapter.sparseCategoricalFocalLoss({ reduction: "none" }), reference, classes, logits, "focal none", randomLogits([2, 3], 133, 1));
      });

      for (const [gamma, alpha] of [[2, 0.25], [0.5, null], [0, 0.6]] as const) {
        it(`sigmoidFocalLoss γ=${gamma} α=${alpha}: multi-label [6, 3], hard and soft labels`, () => {
          const logits = randomLogits([6, 3], 141);
          for (const soft of [false, true]) {
            const labels = randomBinaryLabels([6, 3], 142, soft);
            const ours = adapter.sigmoidFocalLoss({ gamma, alpha });
            const target = labels.dataSync() as Float32Array;
            expectCore(ours, (data) => new SigmoidFocalLoss({ gamma, alpha, reduction: "mean" }).forwardBackward({ data, shape: [6, 3] }, target), labels, logits, `soft=${soft}`);
            expectSame(ours, tfSigmoidFocal(gamma, alpha), labels, logits, `soft=${soft} vs tfjs ops`);
          }
        });
      }

      it("sigmoidFocalLoss on a [N, 1] output with [N] labels, reduction 'sum'", () => {
        const logits = randomLogits([7, 1], 151);
        const labels = randomBinaryLabels([7], 152);
        const reference: LossFn = (t, x) => tf.mul(tfSigmoidFocal(2, 0.25)(tf.reshape(t, [7, 1]), x), 7);
        expectSame(adapter.sigmoidFocalLoss({ reduction: "sum" }), reference, labels, logits, "sum [N, 1]");
      });
    });

    describe("binaryCrossentropy equals tf.losses.sigmoidCrossEntropy", () => {
      const tfSigmoidCE =
        (labelSmoothing = 0): LossFn =>
        (y, x) =>
          tf.losses.sigmoidCrossEntropy(y, x, undefined, labelSmoothing);

      it("multi-label [5, 4], hard and soft labels, labelSmoothing 0 and 0.2", () => {
        const logits = randomLogits([5, 4], 161, 6);
        for (const soft of [false, true]) {
          for (const s of [0, 0.2]) {
            expectSame(adapter.binaryCrossentropy({ labelSmoothing: s }), tfSigmoidCE(s), randomBinaryLabels([5, 4], 162, soft), logits, `soft=${soft} smoothing=${s}`);
          }
        }
      });

      it("posWeight (PyTorch's pos_weight, along the last axis)", () => {
        const posWeight = [1, 3, 0.5];
        const reference: LossFn = (y, x) => {
          // -[pw·y·log σ(x) + (1 − y)·log σ(−x)], with log σ(x) = −softplus(−x).
          const pos = tf.mul(tf.mul(tf.tensor(posWeight), y), tf.neg(tf.softplus(tf.neg(x))));
          const neg = tf.mul(tf.sub(1, y), tf.neg(tf.softplus(x)));
          return tf.mean(tf.neg(tf.add(pos, neg)));
        };
        expectSame(adapter.binaryCrossentropy({ posWeight }), reference, randomBinaryLabels([6, 3], 172), randomLogits([6, 3], 171), "posWeight");
      });

      it("fromLogits: false equals tf.metrics.binaryCrossentropy (gradient through sigmoid)", () => {
        const ours: LossFn = (y, x) => adapter.binaryCrossentropy({ fromLogits: false })(y, tf.sigmoid(x));
        const reference: LossFn = (y, x) => tf.mean(tf.metrics.binaryCrossentropy(y, tf.sigmoid(x)));
        expectSame(ours, reference, randomBinaryLabels([6, 3], 182), randomLogits([6, 3], 181), "probabilities");
      });
    });

    describe("errors name the problem", () => {
      const x = (): tf.Tensor => tf.zeros([4, 3]);
      it("labels of the wrong shape", () => {
        expect(() => adapter.categoricalCrossentropy()(tf.zeros([4]), x())).toThrow(
          "categoricalCrossentropy: labels of shape [4] must have the predictions' shape [4, 3] (one-hot or class probabilities, class axis last); for class indices use the sparse form of this loss",
        );
        expect(() => adapter.sparseCategoricalCrossentropy()(tf.zeros([4, 3]), x())).toThrow(
          "sparseCategoricalCrossentropy: labels of shape [4, 3] do not fit predictions of shape [4, 3]: class indices need shape [4] or [4, 1]; for one-hot labels use the non-sparse form of this loss",
        );
      });
      it("focal loss on labels that are not one-hot; binary labels of the wrong shape", () => {
        expect(() => adapter.categoricalFocalLoss()(tf.tensor([[1, 0, 0], [0.5, 0.5, 0], [0, 0, 1], [0, 1, 0]]), x())).toThrow(
          "categoricalFocalLoss: the labels of position 1 are not one-hot (one 1, the rest 0); soft labels have no focal form here, so pass one class per position (or class indices to the sparse form)",
        );
        expect(() => adapter.categoricalFocalLoss({ alpha: 0.25 })(tf.oneHot([0, 1, 2, 0], 3), x())).toThrow("alpha = 0.25 (a number) means [alpha, 1 - alpha] and needs exactly 2 classes");
        expect(() => adapter.sigmoidFocalLoss()(tf.zeros([4, 2]), x())).toThrow("sigmoidFocalLoss: labels of shape [4, 2] must have the predictions' shape [4, 3]");
        expect(() => adapter.sparseCategoricalFocalLoss({ gamma: -1 })).toThrow("gamma must be a finite number >= 0, got -1");
      });
      it("fractional and out-of-range class indices", () => {
        expect(() => adapter.sparseCategoricalCrossentropy()(tf.tensor([0, 1.5, 2, 0]), x())).toThrow(
          "sparseCategoricalCrossentropy: label 1.5 at position 1 is not an integer class index",
        );
        expect(() => adapter.sparseCategoricalCrossentropy()(tf.tensor([0, 3, 2, 0]), x())).toThrow("Target 3 is out of bounds.");
      });
      it("non-float predictions, a scalar prediction, unknown and bad options", () => {
        expect(() => adapter.sparseCategoricalCrossentropy()(tf.tensor([0, 1, 2, 0]), tf.zeros([4, 3], "int32"))).toThrow(
          "sparseCategoricalCrossentropy: yPred must be a float32 tensor, got int32",
        );
        expect(() => adapter.categoricalCrossentropy()(tf.scalar(1), tf.scalar(1))).toThrow("categoricalCrossentropy: yPred must have a class axis (the last one), got a scalar");
        expect(() => adapter.categoricalCrossentropy({ from_logits: true } as never)).toThrow(
          "categoricalCrossentropy got an unknown option 'from_logits'; did you mean 'fromLogits'?",
        );
        expect(() => adapter.categoricalCrossentropy({ labelSmoothing: 1.5 })).toThrow("categoricalCrossentropy: labelSmoothing must be between 0.0 and 1.0. Got: 1.5");
        expect(() => adapter.categoricalCrossentropy({ reduction: "avg" as never })).toThrow("avg is not a valid value for reduction");
        expect(() => adapter.categoricalCrossentropy({ fromLogits: "yes" as never })).toThrow("categoricalCrossentropy: fromLogits must be a boolean, got string");
      });
    });

    describe("memory", () => {
      it("a call outside tidy leaves only its result; fromLogits: false included", () => {
        const x = randomLogits([5, 4], 71);
        const y = tf.oneHot(randomClasses(5, 4, 72), 4);
        const losses = [
          adapter.categoricalCrossentropy(),
          adapter.categoricalCrossentropy({ fromLogits: false }),
          adapter.categoricalFocalLoss(),
          adapter.sigmoidFocalLoss({ fromLogits: false }),
          adapter.binaryCrossentropy({ reduction: "none" }),
        ];
        for (const f of losses) {
          const before = tf.memory().numTensors;
          const loss = f(y, x);
          expect(tf.memory().numTensors).toBe(before + 1);
          loss.dispose();
        }
      });

      for (const [name, loss] of [
        ["sparseCategoricalCrossentropy", adapter.sparseCategoricalCrossentropy()],
        ["sparseCategoricalFocalLoss", adapter.sparseCategoricalFocalLoss({ alpha: [1, 2, 3] })],
        ["sparseCategoricalFocalLoss 'none'", adapter.sparseCategoricalFocalLoss({ reduction: "none" })],
      ] as const) {
        it(`optimizer.minimize steps keep tf.memory().numTensors constant: ${name}`, () => {
          const x = randomLogits([16, 4], 73, 1);
          const labels = tf.tensor(randomClasses(16, 3, 74));
          const w = tf.variable(randomLogits([4, 3], 75, 0.5));
          const optimizer = tf.train.adam(0.01);
          const step = () => optimizer.minimize(() => tf.mean(loss(labels, tf.matMul(x, w))) as tf.Scalar, false, [w]);
          step(); // the optimizer allocates its slots on the first step
          const before = tf.memory().numTensors;
          for (let i = 0; i < 20; i++) step();
          expect(tf.memory().numTensors).toBe(before);
          optimizer.dispose();
          tf.dispose([x, labels, w]);
        });
      }
    });

    describe("training a small model lowers the loss", () => {
      /** Three Gaussian blobs in 2-D: easy to separate, so the loss must fall far. */
      function blobs(n: number, seed: number): { x: tf.Tensor2D; classes: number[] } {
        const r = rng(seed);
        const centers = [[-2, 0], [2, 0], [0, 2.5]];
        const classes = Array.from({ length: n }, (_, i) => i % 3);
        const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
        const x = classes.flatMap((c) => [centers[c][0] + 0.6 * gauss(), centers[c][1] + 0.6 * gauss()]);
        return { x: tf.tensor2d(x, [n, 2]), classes };
      }
      function model(seed: number): tf.Sequential {
        const m = tf.sequential();
        m.add(tf.layers.dense({ units: 16, activation: "relu", inputShape: [2], kernelInitializer: tf.initializers.glorotUniform({ seed }) }));
        m.add(tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }));
        return m;
      }

      /** The loss after each of `steps` Adam steps of `optimizer.minimize` on the whole set. */
      function minimizeSteps(loss: LossFn, labels: tf.Tensor, m: tf.Sequential, x: tf.Tensor, steps: number): number[] {
        const optimizer = tf.train.adam(0.05);
        const losses: number[] = [];
        for (let i = 0; i < steps; i++) {
          const value = optimizer.minimize(() => loss(labels, m.apply(x) as tf.Tensor) as tf.Scalar, true)!;
          losses.push(value.dataSync()[0]);
          value.dispose();
        }
        optimizer.dispose();
        return losses;
      }

      it("model.compile({ loss }) + model.fit", async () => {
        const { x, classes } = blobs(150, 81);
        const m = model(82);
        m.compile({ optimizer: tf.train.adam(0.05), loss: adapter.categoricalCrossentropy() });
        const history = await m.fit(x, tf.oneHot(classes, 3), { epochs: 15, batchSize: 30, shuffle: false, verbose: 0 });
        const losses = history.history.loss as number[];
        expect(losses[0]).toBeGreaterThan(0.3);
        expect(losses[losses.length - 1]).toBeLessThan(0.5 * losses[0]);
        // The reported loss is ours: the same value tfjs's own loss gives for the trained model.
        const logits = m.predict(x) as tf.Tensor;
        const yTrue = tf.oneHot(classes, 3);
        expectClose(adapter.categoricalCrossentropy()(yTrue, logits).dataSync(), tfSoftmaxCE()(yTrue, logits).dataSync(), "trained loss");
      });

      it("model.fit with categoricalFocalLoss, and with 'none' (per-sample losses, as fit's classWeight needs)", async () => {
        for (const loss of [adapter.categoricalFocalLoss({ gamma: 2 }), adapter.categoricalFocalLoss({ gamma: 2, reduction: "none" })]) {
          const { x, classes } = blobs(150, 83);
          const m = model(84);
          m.compile({ optimizer: tf.train.adam(0.05), loss });
          const history = await m.fit(x, tf.oneHot(classes, 3), { epochs: 15, batchSize: 30, shuffle: false, verbose: 0, classWeight: { 0: 1, 1: 1, 2: 1 } });
          const losses = history.history.loss as number[];
          expect(losses[losses.length - 1]).toBeLessThan(0.3 * losses[0]);
        }
      });

      it("a binary custom loop with sigmoidFocalLoss", () => {
        const { x, classes } = blobs(150, 85);
        const labels = tf.tensor(classes.map((c) => (c === 2 ? 1 : 0)), [150, 1]);
        const m = tf.sequential();
        m.add(tf.layers.dense({ units: 8, activation: "relu", inputShape: [2], kernelInitializer: tf.initializers.glorotUniform({ seed: 86 }) }));
        m.add(tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 87 }) }));
        const losses = minimizeSteps(adapter.sigmoidFocalLoss(), labels, m, x, 40);
        expect(losses[losses.length - 1]).toBeLessThan(0.3 * losses[0]);
      });

      it("a custom loop with optimizer.minimize and sparse labels", () => {
        const { x, classes } = blobs(150, 91);
        const m = model(92);
        const labels = tf.tensor(classes);
        const losses = minimizeSteps(adapter.sparseCategoricalCrossentropy(), labels, m, x, 40);
        expect(losses[losses.length - 1]).toBeLessThan(0.5 * losses[0]);
        const predicted = tf.tidy(() => tf.argMax(m.predict(x) as tf.Tensor, -1).dataSync());
        const accuracy = classes.filter((c, i) => predicted[i] === c).length / classes.length;
        expect(accuracy).toBeGreaterThan(0.9);
      });
    });
  });
}
