/**
 * Imbalanced classification with TensorFlow.js: the same small classifier trained with
 * cross-entropy and with focal loss from fused-loss/tfjs, on a data set made here with a seeded
 * generator (3 classes in the ratio 1:10:100). Prints per-class recall and precision, the rare
 * class's recall after each epoch, and the time spent in the loss against the whole step.
 *
 *   npm run example        (builds dist/ first if it is missing)
 */
import * as tf from "@tensorflow/tfjs";
import { categoricalCrossentropy, categoricalFocalLoss } from "fused-loss/tfjs";

const DIMENSIONS = 10;
const TRAIN_COUNTS = [50, 500, 5000]; // rare : medium : common = 1 : 10 : 100
const TEST_COUNTS = TRAIN_COUNTS.map((n) => 6 * n);
const CLASS_NAMES = ["rare", "medium", "common"];
const SEPARATION = 1.5; // distance scale between class means, in noise standard deviations
const EPOCHS = 6;
const BATCH = 128;
const LEARNING_RATE = 3e-3;

/** mulberry32: a seeded uniform generator in [0, 1). */
function uniform(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box–Muller) from a seeded generator. */
function normal(seed) {
  const u = uniform(seed);
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

const meanOf = (() => {
  const g = normal(1);
  return TRAIN_COUNTS.map(() => Array.from({ length: DIMENSIONS }, () => (g() * SEPARATION) / Math.SQRT2));
})();

/** Gaussian blobs around the class means, unit variance, shuffled with the same seed. */
function blobs(counts, seed) {
  const g = normal(seed);
  const u = uniform(seed + 1000);
  const classes = counts.flatMap((n, c) => Array(n).fill(c));
  for (let i = classes.length - 1; i > 0; i--) {
    const j = Math.floor(u() * (i + 1));
    [classes[i], classes[j]] = [classes[j], classes[i]];
  }
  const x = new Float32Array(classes.length * DIMENSIONS);
  classes.forEach((c, i) => {
    for (let d = 0; d < DIMENSIONS; d++) x[i * DIMENSIONS + d] = meanOf[c][d] + g();
  });
  return { x: tf.tensor2d(x, [classes.length, DIMENSIONS]), classes };
}

/** The classifier: 10 → 32 → 32 → 3 logits (no softmax: the losses take logits). */
function classifier() {
  const init = (seed) => tf.initializers.glorotUniform({ seed });
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: 32, activation: "relu", inputShape: [DIMENSIONS], kernelInitializer: init(7) }));
  model.add(tf.layers.dense({ units: 32, activation: "relu", kernelInitializer: init(8) }));
  model.add(tf.layers.dense({ units: TRAIN_COUNTS.length, kernelInitializer: init(9) }));
  return model;
}

/** Wraps a loss to add up the wall time spent inside it. The fused kernel computes the loss
 * and the gradient in this call; tfjs's backward pass then only wraps the stored gradient. */
function timed(loss, clock) {
  return (yTrue, yPred) => {
    const start = performance.now();
    const value = loss(yTrue, yPred);
    clock.ms += performance.now() - start;
    return value;
  };
}

const predictedClasses = (model, x) => tf.tidy(() => tf.argMax(model.predict(x), -1).dataSync());

function recallAndPrecision(predicted, classes, c) {
  let tp = 0;
  let fn = 0;
  let fp = 0;
  classes.forEach((y, i) => {
    if (y === c) predicted[i] === c ? tp++ : fn++;
    else if (predicted[i] === c) fp++;
  });
  return { recall: tp / (tp + fn), precision: tp + fp === 0 ? NaN : tp / (tp + fp) };
}

async function train(name, loss, data) {
  const model = classifier();
  const lossClock = { ms: 0 };
  model.compile({ optimizer: tf.train.adam(LEARNING_RATE), loss: timed(loss, lossClock) });
  const rareTest = data.test.classes.flatMap((c, i) => (c === 0 ? [i] : []));
  const rareX = tf.gather(data.test.x, rareTest);
  const rareRecallByEpoch = [];
  let stepMs = 0;
  let stepStart = 0;
  let steps = 0;
  const trainStart = performance.now();
  await model.fit(data.train.x, data.train.y, {
    epochs: EPOCHS,
    batchSize: BATCH,
    shuffle: false, // the data is already shuffled by the seeded generator: runs are reproducible
    verbose: 0,
    callbacks: {
      onBatchBegin: async () => {
        stepStart = performance.now();
      },
      onBatchEnd: async () => {
        stepMs += performance.now() - stepStart;
        steps++;
      },
      onEpochEnd: async () => {
        const predicted = predictedClasses(model, rareX);
        rareRecallByEpoch.push(predicted.filter((p) => p === 0).length / predicted.length);
      },
    },
  });
  const trainMs = performance.now() - trainStart;
  const predicted = predictedClasses(model, data.test.x);
  const perClass = CLASS_NAMES.map((_, c) => recallAndPrecision(predicted, data.test.classes, c));
  rareX.dispose();
  model.dispose();
  return { name, perClass, rareRecallByEpoch, lossMs: lossClock.ms, stepMs, steps, trainMs };
}

const pad = (s, n) => String(s).padEnd(n);
const fmt = (v) => (Number.isNaN(v) ? "  -  " : v.toFixed(3));

tf.enableProdMode(); // also silences tfjs's "install tfjs-node" banner
await tf.setBackend("cpu");
const train_ = blobs(TRAIN_COUNTS, 2);
const data = { train: { ...train_, y: tf.oneHot(train_.classes, TRAIN_COUNTS.length) }, test: blobs(TEST_COUNTS, 3) };

console.log(`Data: ${DIMENSIONS}-D Gaussian blobs, classes ${CLASS_NAMES.join("/")}, train ${TRAIN_COUNTS.join("/")} (1:10:100), test ${TEST_COUNTS.join("/")}, seeded.`);
console.log(`Model: dense ${DIMENSIONS}-32-32-3 (relu), Adam lr ${LEARNING_RATE}, batch ${BATCH}, ${EPOCHS} epochs, tfjs '${tf.getBackend()}' backend; the same initial weights for every run.`);
console.log("");

/** The same focal loss written with tfjs ops, as one would without fused-loss (for timing). */
function focalFromTfjsOps(gamma, alpha) {
  return (yTrue, yPred) =>
    tf.tidy(() => {
      const logpt = tf.sum(tf.mul(tf.logSoftmax(yPred), yTrue), -1);
      let loss = tf.mul(tf.neg(tf.pow(tf.sub(1, tf.exp(logpt)), gamma)), logpt);
      if (alpha) loss = tf.mul(loss, tf.sum(tf.mul(yTrue, tf.tensor(alpha)), -1));
      return tf.mean(loss);
    });
}

/** Microseconds per forward+backward of `loss` alone on one batch (tf.grad w.r.t. the logits). */
function microsecondsPerCall(loss, yTrue, logits, calls = 2000) {
  const step = () => tf.tidy(() => tf.grad((x) => loss(yTrue, x))(logits).dataSync());
  for (let i = 0; i < 200; i++) step();
  const start = performance.now();
  for (let i = 0; i < calls; i++) step();
  return (1000 * (performance.now() - start)) / calls;
}

// α for the third run: 1/sqrt(class frequency), scaled so the rare class gets 1.
const alpha = TRAIN_COUNTS.map((n) => Math.sqrt(TRAIN_COUNTS[0] / n));
const runs = [
  ["cross-entropy", categoricalCrossentropy(), (y, x) => tf.losses.softmaxCrossEntropy(y, x)],
  ["focal γ=2", categoricalFocalLoss({ gamma: 2 }), focalFromTfjsOps(2)],
  [`focal γ=2, α=[${alpha.map((a) => a.toFixed(2)).join(", ")}]`, categoricalFocalLoss({ gamma: 2, alpha }), focalFromTfjsOps(2, alpha)],
];
// Untimed warm-up (JIT compilation, wasm loading), so that no run pays for it.
for (const [, loss] of runs) {
  const model = classifier();
  model.compile({ optimizer: tf.train.adam(LEARNING_RATE), loss });
  await model.fit(data.train.x, data.train.y, { epochs: 1, batchSize: BATCH, shuffle: false, verbose: 0 });
  model.dispose();
}
const results = [];
for (const [name, loss] of runs) results.push(await train(name, loss, data));

const width = Math.max(...results.map((r) => r.name.length)) + 2;
console.log(pad("loss", width) + CLASS_NAMES.map((c) => pad(`${c} recall / precision`, 26)).join(""));
for (const r of results) {
  console.log(pad(r.name, width) + r.perClass.map((m) => pad(`${fmt(m.recall)}  / ${fmt(m.precision)}`, 26)).join(""));
}
console.log("");
console.log(pad("rare-class recall after epoch", width) + Array.from({ length: EPOCHS }, (_, e) => pad(e + 1, 6)).join(""));
for (const r of results) console.log(pad(r.name, width) + r.rareRecallByEpoch.map((v) => pad(v.toFixed(2), 6)).join(""));
console.log("");
console.log(pad("time", width) + "in the loss      whole steps   loss share   per step   training");
results.forEach((r, i) => {
  const share = ((100 * r.lossMs) / r.stepMs).toFixed(1) + " %";
  console.log(
    pad(r.name, width) +
      pad(`${r.lossMs.toFixed(0)} ms`, 17) +
      pad(`${r.stepMs.toFixed(0)} ms`, 14) +
      pad(share, 13) +
      pad(`${((1000 * r.stepMs) / r.steps).toFixed(0)} µs`, 11) +
      `${(r.trainMs / 1000).toFixed(1)} s`,
  );
});
console.log("");
const batchLogits = data.train.x.slice([0, 0], [BATCH, DIMENSIONS]).matMul(tf.randomNormal([DIMENSIONS, 3], 0, 1, "float32", 5));
const batchLabels = data.train.y.slice([0, 0], [BATCH, 3]);
console.log(pad(`loss alone, fwd+bwd, ${BATCH}×3`, width) + "fused-loss/tfjs   the same loss from tfjs ops");
for (const [name, fused, tfjsOps] of runs) {
  const ours = microsecondsPerCall(fused, batchLabels, batchLogits);
  const theirs = microsecondsPerCall(tfjsOps, batchLabels, batchLogits);
  console.log(pad(name, width) + pad(`${ours.toFixed(0)} µs`, 18) + `${theirs.toFixed(0)} µs` + (name === "cross-entropy" ? " (tf.losses.softmaxCrossEntropy)" : ""));
}
