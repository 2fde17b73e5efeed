/**
 * The computation every environment under test runs (Node, a plain page, Vite and webpack
 * apps, workers): cross-entropy and focal losses with gradients on fixed pseudo-random
 * inputs. Plain JavaScript, so that browsers and bundlers load it as it is; it receives the
 * package's namespace rather than importing it, so each environment resolves "fused-loss"
 * its own way.
 */
import { mulberry32 } from "./mulberry32.js";

function logits(random, n, scale) {
  return Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale);
}

function plain(value) {
  return typeof value === "number" ? value : Array.from(value);
}

/** Runs every case with the namespace `api` of fused-loss; returns plain JSON-able numbers. */
export function runScenario(api) {
  const random = mulberry32(20240611);
  const N = 37;
  const C = 11;
  const input = { data: logits(random, N * C, 6), shape: [N, C] };
  const classes = Int32Array.from({ length: N }, (_, i) => (i % 9 === 4 ? -100 : Math.floor(random() * C)));
  const weight = Float32Array.from({ length: C }, () => 0.25 + random());
  const spatial = { data: logits(random, 2 * 5 * 4 * 3, 4), shape: [2, 5, 4, 3] };
  const probs = new Float32Array(spatial.data.length);
  for (let n = 0; n < 2; n++) {
    for (let s = 0; s < 12; s++) {
      let sum = 0;
      for (let c = 0; c < 5; c++) sum += probs[n * 60 + c * 12 + s] = random();
      for (let c = 0; c < 5; c++) probs[n * 60 + c * 12 + s] /= sum;
    }
  }
  const spatialTarget = { data: probs, shape: [2, 5, 4, 3] };
  const upstream = Float32Array.from({ length: N }, () => random() * 2 - 1);

  const out = {};
  const record = (name, result) => {
    out[name] = { loss: plain(result.loss), grad: plain(result.grad) };
  };
  record("ce-mean", new api.CrossEntropyLoss().forwardBackward(input, classes));
  record(
    "ce-weight-smoothing-none",
    new api.CrossEntropyLoss({ weight, labelSmoothing: 0.15, reduction: "none" }).forwardBackward(input, classes, { gradOutput: upstream }),
  );
  record("ce-prob-spatial-sum", new api.CrossEntropyLoss({ reduction: "sum" }).forwardBackward(spatial, spatialTarget));
  record("focal-gamma2-alpha-mean", new api.FocalLoss({ gamma: 2, alpha: weight, reduction: "mean" }).forwardBackward(input, classes));
  record("focal-gamma1.5-sum", new api.FocalLoss({ gamma: 1.5, reduction: "sum" }).forwardBackward(input, classes));
  return { backend: api.getBackend(), results: out };
}
