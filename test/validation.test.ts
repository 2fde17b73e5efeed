/**
 * Every bad input, table-driven: the exact message (PyTorch's wording where PyTorch has one),
 * and, right after the error, a valid call on the same backend that still returns PyTorch's
 * answer (a fixture) with no growth of wasm memory or of the workspace: nothing is poisoned
 * and nothing leaks.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as api from "../ts/index.js";
import { resolveBackend } from "../ts/backend.js";
import type { WasmBackend } from "../ts/wasm/backend.js";
import { BACKENDS, decodeOptions, expectClose, f32, loadFixtures, num, type FixtureCase } from "./helpers.js";

type LossName = "CrossEntropyLoss" | "NLLLoss" | "FocalLoss" | "SigmoidFocalLoss" | "BCEWithLogitsLoss" | "BCELoss";
interface AnyLoss {
  forward(input: unknown, target: unknown): number | Float32Array;
  forwardBackward(input: unknown, target: unknown, options?: unknown): api.LossAndGrad;
}
type Ctor = new (options?: unknown) => AnyLoss;
const LOSSES: Record<LossName, { ctor: Ctor; file: string }> = {
  CrossEntropyLoss: { ctor: api.CrossEntropyLoss as unknown as Ctor, file: "cross_entropy" },
  NLLLoss: { ctor: api.NLLLoss as unknown as Ctor, file: "nll" },
  FocalLoss: { ctor: api.FocalLoss as unknown as Ctor, file: "focal" },
  SigmoidFocalLoss: { ctor: api.SigmoidFocalLoss as unknown as Ctor, file: "sigmoid_focal" },
  BCEWithLogitsLoss: { ctor: api.BCEWithLogitsLoss as unknown as Ctor, file: "bce_with_logits" },
  BCELoss: { ctor: api.BCELoss as unknown as Ctor, file: "bce" },
};

/** One PyTorch fixture per loss ('mean', with a weight where the loss has one): the valid call. */
function validCase(name: LossName): FixtureCase {
  const cases = loadFixtures(LOSSES[name].file).cases.filter((c) => c.options.reduction === "mean" && !c.deviation && c.input.data.length > 0);
  return cases.find((c) => "weight" in c.options) ?? cases[0];
}
const VALID = Object.fromEntries((Object.keys(LOSSES) as LossName[]).map((n) => [n, validCase(n)])) as Record<LossName, FixtureCase>;

function fixtureTarget(c: FixtureCase): unknown {
  const data = c.target.kind === "index" ? Int32Array.from(c.target.data.map(num)) : f32(c.target);
  return { data, shape: c.target.shape };
}

/** A valid call on `backend` returns PyTorch's loss and gradient. */
function expectValidCall(name: LossName, backend: api.BackendName): void {
  const c = VALID[name];
  const loss = new LOSSES[name].ctor({ ...decodeOptions(c.options), backend });
  const go = typeof c.gradOutput === "object" ? f32(c.gradOutput) : c.gradOutput === undefined ? undefined : num(c.gradOutput);
  const r = loss.forwardBackward({ data: f32(c.input), shape: c.input.shape }, fixtureTarget(c), { gradOutput: go });
  const expected = typeof c.expected.loss === "object" ? c.expected.loss.data.map(num) : [num(c.expected.loss)];
  expectClose(typeof r.loss === "number" ? [r.loss] : r.loss, expected, `${name} loss after an error`);
  expectClose(r.grad, f32(c.expected.grad), `${name} grad after an error`);
}

// Inputs reused by the table.
const x35 = () => ({ data: new Float32Array(15).map((_, i) => Math.sin(i)), shape: [3, 5] });
const t3 = () => new Int32Array([0, 4, 2]);
const p35 = () => ({ data: new Float32Array(15).fill(0.2), shape: [3, 5] });
const probs23 = () => ({ data: new Float32Array(6).fill(0.5), shape: [2, 3] });

interface Row {
  loss: LossName;
  name: string;
  /** Does the bad thing with the loss's class on `backend`. */
  act: (ctor: Ctor, backend: api.BackendName) => unknown;
  message: string;
  type?: typeof TypeError | typeof RangeError;
}

const ce = (options: Record<string, unknown>, backend: api.BackendName): AnyLoss =>
  new LOSSES.CrossEntropyLoss.ctor({ ...options, backend });

const ROWS: Row[] = [
  // --- option names and values ---
  { loss: "CrossEntropyLoss", name: "snake_case option", act: (C, b) => new C({ ignore_index: 1, backend: b }), message: "CrossEntropyLoss got an unknown option 'ignore_index'; did you mean 'ignoreIndex'?", type: TypeError },
  { loss: "CrossEntropyLoss", name: "label_smoothing", act: (C, b) => new C({ label_smoothing: 0.1, backend: b }), message: "CrossEntropyLoss got an unknown option 'label_smoothing'; did you mean 'labelSmoothing'?", type: TypeError },
  { loss: "CrossEntropyLoss", name: "misspelt option", act: (C, b) => new C({ wieght: [1, 2], backend: b }), message: "CrossEntropyLoss got an unknown option 'wieght'; did you mean 'weight'?", type: TypeError },
  { loss: "CrossEntropyLoss", name: "unrelated option", act: (C, b) => new C({ foo: 1, backend: b }), message: "CrossEntropyLoss got an unknown option 'foo'; valid options are 'weight', 'ignoreIndex', 'reduction', 'labelSmoothing', 'backend'", type: TypeError },
  { loss: "CrossEntropyLoss", name: "PyTorch's deprecated reduce", act: (C, b) => new C({ reduce: false, backend: b }), message: "CrossEntropyLoss got PyTorch's deprecated option 'reduce'; use reduction: 'none' | 'mean' | 'sum'", type: TypeError },
  { loss: "CrossEntropyLoss", name: "options not an object", act: (C) => new C("mean"), message: "CrossEntropyLoss options must be an object, got string", type: TypeError },
  { loss: "CrossEntropyLoss", name: "invalid reduction", act: (C, b) => new C({ reduction: "avg", backend: b }), message: "avg is not a valid value for reduction", type: RangeError },
  { loss: "CrossEntropyLoss", name: "label smoothing above 1", act: (C, b) => new C({ labelSmoothing: 1.5, backend: b }), message: "label_smoothing must be between 0.0 and 1.0. Got: 1.5", type: RangeError },
  { loss: "CrossEntropyLoss", name: "label smoothing Infinity", act: (C, b) => new C({ labelSmoothing: Infinity, backend: b }), message: "label_smoothing must be between 0.0 and 1.0. Got: Infinity", type: RangeError },
  { loss: "CrossEntropyLoss", name: "negative label smoothing (deviation)", act: (C, b) => new C({ labelSmoothing: -0.1, backend: b }), message: "label_smoothing must be between 0.0 and 1.0. Got: -0.1", type: RangeError },
  { loss: "CrossEntropyLoss", name: "NaN label smoothing (deviation)", act: (C, b) => new C({ labelSmoothing: NaN, backend: b }), message: "CrossEntropyLoss: labelSmoothing must be a number, got NaN", type: TypeError },
  { loss: "CrossEntropyLoss", name: "label smoothing as a string", act: (C, b) => new C({ labelSmoothing: "0.1", backend: b }), message: "CrossEntropyLoss: labelSmoothing must be a number, got string", type: TypeError },
  { loss: "CrossEntropyLoss", name: "non-integer ignoreIndex", act: (C, b) => new C({ ignoreIndex: 1.5, backend: b }), message: "CrossEntropyLoss: ignoreIndex must be an integer, got 1.5", type: TypeError },
  { loss: "CrossEntropyLoss", name: "NaN weight (deviation)", act: (C, b) => new C({ weight: [1, NaN, 1], backend: b }), message: "weight[1] = NaN: weights must be finite", type: RangeError },
  { loss: "CrossEntropyLoss", name: "infinite weight (deviation)", act: (C, b) => new C({ weight: new Float32Array([1, 1, -Infinity]), backend: b }), message: "weight[2] = -Infinity: weights must be finite", type: RangeError },
  { loss: "CrossEntropyLoss", name: "Float64Array weight", act: (C, b) => new C({ weight: new Float64Array(5), backend: b }), message: "weight must be a Float32Array, a number[] or { data, shape }, got Float64Array", type: TypeError },
  { loss: "CrossEntropyLoss", name: "weight data/shape mismatch", act: (C, b) => new C({ weight: { data: new Float32Array(5), shape: [4] }, backend: b }), message: "weight has 5 elements but its shape [4] needs 4", type: RangeError },
  { loss: "CrossEntropyLoss", name: "unknown backend", act: (C) => new C({ backend: "gpu" }), message: `backend must be 'simd', 'scalar' or 'js', got "gpu"`, type: RangeError },
  // --- input ---
  { loss: "CrossEntropyLoss", name: "Float64Array input", act: (_C, b) => ce({}, b).forward({ data: new Float64Array(15), shape: [3, 5] }, t3()), message: "input.data must be a Float32Array, got Float64Array (convert with Float32Array.from)", type: TypeError },
  { loss: "CrossEntropyLoss", name: "bare array as input", act: (_C, b) => ce({}, b).forward(new Float32Array(15), t3()), message: "input must be { data: Float32Array, shape: number[] }, got Float32Array", type: TypeError },
  { loss: "CrossEntropyLoss", name: "data length vs shape", act: (_C, b) => ce({}, b).forward({ data: new Float32Array(14), shape: [3, 5] }, t3()), message: "input.data has 14 elements but input.shape [3, 5] needs 15", type: RangeError },
  { loss: "CrossEntropyLoss", name: "negative dimension", act: (_C, b) => ce({}, b).forward({ data: new Float32Array(15), shape: [3, -5] }, t3()), message: "input.shape must be an array of non-negative integers, got [3, -5]", type: TypeError },
  { loss: "CrossEntropyLoss", name: "shape not an array", act: (_C, b) => ce({}, b).forward({ data: new Float32Array(15), shape: new Int32Array([3, 5]) }, t3()), message: "input.shape must be an array of non-negative integers, got Int32Array", type: TypeError },
  { loss: "CrossEntropyLoss", name: "0-d input", act: (_C, b) => ce({}, b).forward({ data: new Float32Array(1), shape: [] }, [0]), message: "input must have at least 1 dimension (the class axis), got shape []", type: RangeError },
  // --- targets ---
  { loss: "CrossEntropyLoss", name: "Int16Array target", act: (_C, b) => ce({}, b).forward(x35(), new Int16Array([0, 1, 2])), message: "CrossEntropyLoss: target must hold class indices (Int32Array, BigInt64Array, Uint8Array or number[]) or class probabilities (Float32Array), got Int16Array", type: TypeError },
  { loss: "CrossEntropyLoss", name: "Int16Array target with a shape", act: (_C, b) => ce({}, b).forward(x35(), { data: new Int16Array([0, 1, 2]), shape: [3] }), message: "CrossEntropyLoss: target must hold class indices (Int32Array, BigInt64Array, Uint8Array or number[]) or class probabilities (Float32Array), got Int16Array", type: TypeError },
  { loss: "CrossEntropyLoss", name: "target null", act: (_C, b) => ce({}, b).forward(x35(), null), message: "CrossEntropyLoss: target must be a typed array, a number[] or { data, shape }, got null", type: TypeError },
  { loss: "CrossEntropyLoss", name: "target out of range", act: (_C, b) => ce({}, b).forward(x35(), new Int32Array([0, 7, 1])), message: "Target 7 is out of bounds.", type: RangeError },
  { loss: "CrossEntropyLoss", name: "negative target", act: (_C, b) => ce({}, b).forward(x35(), [0, -1, 1]), message: "Target -1 is out of bounds.", type: RangeError },
  { loss: "CrossEntropyLoss", name: "int64 target out of range", act: (_C, b) => ce({}, b).forward(x35(), new BigInt64Array([0n, 1n << 40n, 1n])), message: "Target 1099511627776 is out of bounds.", type: RangeError },
  { loss: "CrossEntropyLoss", name: "Uint8 target out of range", act: (_C, b) => ce({}, b).forward(x35(), new Uint8Array([0, 255, 1])), message: "Target 255 is out of bounds.", type: RangeError },
  { loss: "CrossEntropyLoss", name: "target of the default ignore index with another ignoreIndex", act: (_C, b) => ce({ ignoreIndex: 1 }, b).forward(x35(), [0, -100, 1]), message: "Target -100 is out of bounds.", type: RangeError },
  { loss: "CrossEntropyLoss", name: "non-integer target", act: (_C, b) => ce({}, b).forward(x35(), [0, 1.5, 1]), message: "target[1] = 1.5 is not an integer class index", type: TypeError },
  { loss: "CrossEntropyLoss", name: "NaN target", act: (_C, b) => ce({}, b).forward(x35(), [0, 1, NaN]), message: "target[2] = NaN is not an integer class index", type: TypeError },
  { loss: "CrossEntropyLoss", name: "string target", act: (_C, b) => ce({}, b).forward(x35(), ["0", 1, 2]), message: 'target[0] = "0" (string) is not an integer class index', type: TypeError },
  { loss: "CrossEntropyLoss", name: "batch size mismatch", act: (_C, b) => ce({}, b).forward(x35(), [0, 1]), message: "Expected input batch_size (3) to match target batch_size (2).", type: RangeError },
  { loss: "CrossEntropyLoss", name: "target data vs its shape", act: (_C, b) => ce({}, b).forward(x35(), { data: [0, 1], shape: [3] }), message: "target.data has 2 elements but target.shape [3] needs 3", type: RangeError },
  { loss: "CrossEntropyLoss", name: "multi-target", act: (_C, b) => ce({}, b).forward(x35(), { data: t3(), shape: [3, 1] }), message: "0D or 1D target tensor expected, multi-target not supported", type: RangeError },
  { loss: "CrossEntropyLoss", name: "unbatched target of shape [1]", act: (_C, b) => ce({}, b).forward({ data: new Float32Array(5), shape: [5] }, { data: [1], shape: [1] }), message: "size mismatch (got input: [5], target: [1])", type: RangeError },
  { loss: "CrossEntropyLoss", name: "3-d target size", act: (_C, b) => ce({}, b).forward({ data: new Float32Array(24), shape: [2, 3, 4] }, { data: new Int32Array(10), shape: [2, 5] }), message: "Expected target size [2, 4], got [2, 5]", type: RangeError },
  { loss: "CrossEntropyLoss", name: "4-d target size", act: (_C, b) => ce({}, b).forward({ data: new Float32Array(120), shape: [2, 3, 4, 5] }, { data: new Int32Array(48), shape: [2, 4, 6] }), message: "size mismatch (got input: [2, 3, 4, 5] , target: [2, 4, 6]", type: RangeError },
  { loss: "CrossEntropyLoss", name: "4-d target rank", act: (_C, b) => ce({}, b).forward({ data: new Float32Array(120), shape: [2, 3, 4, 5] }, { data: new Int32Array(40), shape: [2, 20] }), message: "only batches of spatial targets supported (3D tensors) but got targets of dimension: 2", type: RangeError },
  { loss: "CrossEntropyLoss", name: "5-d target size", act: (_C, b) => ce({}, b).forward({ data: new Float32Array(2 * 3 * 4 * 5 * 6), shape: [2, 3, 4, 5, 6] }, { data: new Int32Array(2 * 4 * 5 * 7), shape: [2, 4, 5, 7] }), message: "Expected target size [2, 4, 5, 6], got [2, 4, 5, 7]", type: RangeError },
  { loss: "CrossEntropyLoss", name: "integer probabilities", act: (_C, b) => ce({}, b).forward(x35(), { data: new Int32Array(15), shape: [3, 5] }), message: "Expected floating point type for target with class probabilities, got Int (Int32Array)", type: TypeError },
  { loss: "CrossEntropyLoss", name: "probabilities of the wrong shape", act: (_C, b) => ce({}, b).forward(x35(), { data: new Float32Array(12), shape: [3, 4] }), message: "CrossEntropyLoss: a Float32Array target is taken as class probabilities and needs the input's shape [3, 5], got [3, 4]", type: TypeError },
  { loss: "CrossEntropyLoss", name: "bare probabilities of the wrong length", act: (_C, b) => ce({}, b).forward(x35(), new Float32Array(3)), message: "CrossEntropyLoss: target has 3 elements but the input has 15; class probabilities need the input's shape", type: RangeError },
  { loss: "CrossEntropyLoss", name: "probabilities with a non-negative ignoreIndex", act: (_C, b) => ce({ ignoreIndex: 0 }, b).forward(x35(), p35()), message: "ignore_index is not supported for floating point target", type: RangeError },
  { loss: "CrossEntropyLoss", name: "weight of the wrong length", act: (_C, b) => ce({ weight: [1, 1, 1, 1] }, b).forward(x35(), t3()), message: "weight tensor should be defined either for all 5 classes or no classes but got weight tensor of shape: [4]", type: RangeError },
  { loss: "CrossEntropyLoss", name: "weight of the wrong rank", act: (_C, b) => ce({ weight: { data: new Float32Array(5).fill(1), shape: [1, 5] } }, b).forward(x35(), t3()), message: "weight tensor should be defined either for all 5 classes or no classes but got weight tensor of shape: [1, 5]", type: RangeError },
  { loss: "CrossEntropyLoss", name: "prob-target weight of the wrong length", act: (_C, b) => ce({ weight: [1, 1] }, b).forward(x35(), p35()), message: "cross_entropy: weight tensor should be defined either for all 5 classes or no classes but got weight tensor of shape: [2]", type: RangeError },
  // --- gradOutput and gradInput ---
  { loss: "CrossEntropyLoss", name: "grad_output option", act: (_C, b) => ce({}, b).forwardBackward(x35(), t3(), { grad_output: 1 }), message: "CrossEntropyLoss.forwardBackward got an unknown option 'grad_output'; did you mean 'gradOutput'?", type: TypeError },
  { loss: "CrossEntropyLoss", name: "array gradOutput for 'mean'", act: (_C, b) => ce({}, b).forwardBackward(x35(), t3(), { gradOutput: new Float32Array(3) }), message: "CrossEntropyLoss: gradOutput must be a number for reduction 'mean' (the loss is a scalar), got Float32Array", type: TypeError },
  { loss: "CrossEntropyLoss", name: "gradOutput shape for 'none'", act: (_C, b) => ce({ reduction: "none" }, b).forwardBackward(x35(), t3(), { gradOutput: new Float32Array(2) }), message: "CrossEntropyLoss: Mismatch in shape: gradOutput has a shape of [2] and the loss has a shape of [3] (3 elements).", type: RangeError },
  { loss: "CrossEntropyLoss", name: "number[] gradOutput for 'none'", act: (_C, b) => ce({ reduction: "none" }, b).forwardBackward(x35(), t3(), { gradOutput: [1, 1, 1] }), message: "CrossEntropyLoss: gradOutput must be a number or a Float32Array (one value per loss element) for reduction 'none', got Array", type: TypeError },
  { loss: "CrossEntropyLoss", name: "gradInput length", act: (_C, b) => ce({}, b).forwardBackward(x35(), t3(), { gradInput: new Float32Array(14) }), message: "CrossEntropyLoss: gradInput has 14 elements but the input has 15", type: RangeError },
  { loss: "CrossEntropyLoss", name: "Float64Array gradInput", act: (_C, b) => ce({}, b).forwardBackward(x35(), t3(), { gradInput: new Float64Array(15) }), message: "CrossEntropyLoss: gradInput must be a Float32Array, got Float64Array", type: TypeError },
  {
    loss: "CrossEntropyLoss",
    name: "gradInput shifted over the input",
    act: (_C, b) => {
      const buffer = new Float32Array(16);
      return ce({}, b).forwardBackward({ data: buffer.subarray(0, 15), shape: [3, 5] }, t3(), { gradInput: buffer.subarray(1) });
    },
    message: "CrossEntropyLoss: gradInput partly overlaps input.data; pass input.data itself for an in-place gradient, or a separate buffer",
    type: RangeError,
  },
  {
    loss: "CrossEntropyLoss",
    name: "gradInput over the probabilities",
    act: (_C, b) => {
      const probs = p35();
      return ce({}, b).forwardBackward(x35(), probs, { gradInput: probs.data });
    },
    message: "CrossEntropyLoss: gradInput shares memory with target, which is read while the gradient is written",
    type: RangeError,
  },
  {
    loss: "CrossEntropyLoss",
    name: "gradInput over gradOutput",
    act: (_C, b) => {
      const buffer = new Float32Array(18);
      return ce({ reduction: "none" }, b).forwardBackward(x35(), t3(), { gradOutput: buffer.subarray(15), gradInput: buffer.subarray(3) });
    },
    message: "CrossEntropyLoss: gradInput shares memory with gradOutput, which is read while the gradient is written",
    type: RangeError,
  },
  // --- the other losses ---
  { loss: "NLLLoss", name: "snake_case option", act: (C, b) => new C({ ignore_index: 0, backend: b }), message: "NLLLoss got an unknown option 'ignore_index'; did you mean 'ignoreIndex'?", type: TypeError },
  { loss: "NLLLoss", name: "target out of range", act: (C, b) => new C({ backend: b }).forward(x35(), [0, 5, 1]), message: "Target 5 is out of bounds.", type: RangeError },
  { loss: "NLLLoss", name: "float target", act: (C, b) => new C({ backend: b }).forward(x35(), new Float32Array(3)), message: "NLLLoss: expected class indices (Int32Array, BigInt64Array, Uint8Array or number[]), got Float32Array", type: TypeError },
  { loss: "NLLLoss", name: "weight of the wrong length", act: (C, b) => new C({ weight: [1, 2], backend: b }).forward(x35(), t3()), message: "weight tensor should be defined either for all 5 classes or no classes but got weight tensor of shape: [2]", type: RangeError },
  { loss: "NLLLoss", name: "NaN weight", act: (C, b) => new C({ weight: [1, 2, NaN, 1, 1], backend: b }), message: "weight[2] = NaN: weights must be finite", type: RangeError },
  { loss: "FocalLoss", name: "negative gamma", act: (C, b) => new C({ gamma: -1, backend: b }), message: "FocalLoss: gamma must be a finite number >= 0, got -1", type: RangeError },
  { loss: "FocalLoss", name: "PyTorch's size_average", act: (C, b) => new C({ size_average: true, backend: b }), message: "FocalLoss got an unknown option 'size_average'; did you mean 'sizeAverage'?", type: TypeError },
  { loss: "FocalLoss", name: "target out of range", act: (C, b) => new C({ backend: b }).forward(x35(), [0, 9, 1]), message: "Target 9 is out of bounds.", type: RangeError },
  { loss: "SigmoidFocalLoss", name: "invalid reduction", act: (C, b) => new C({ reduction: "avg", backend: b }), message: "Invalid Value for arg 'reduction': 'avg' \n Supported reduction modes: 'none', 'mean', 'sum'", type: RangeError },
  { loss: "SigmoidFocalLoss", name: "NaN gamma", act: (C, b) => new C({ gamma: NaN, backend: b }), message: "SigmoidFocalLoss: gamma must be a number, got NaN", type: TypeError },
  { loss: "BCEWithLogitsLoss", name: "pos_weight", act: (C, b) => new C({ pos_weight: [1], backend: b }), message: "BCEWithLogitsLoss got an unknown option 'pos_weight'; did you mean 'posWeight'?", type: TypeError },
  { loss: "BCEWithLogitsLoss", name: "target size", act: (C, b) => new C({ backend: b }).forward(probs23(), { data: new Float32Array(4), shape: [4] }), message: "Target size ([4]) must be the same as input size ([2, 3])", type: RangeError },
  { loss: "BCEWithLogitsLoss", name: "weight broadcast", act: (C, b) => new C({ weight: [1, 2], backend: b }).forward(probs23(), probs23()), message: "The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 1", type: RangeError },
  { loss: "BCEWithLogitsLoss", name: "weight and posWeight both invalid: posWeight's error first", act: (C, b) => new C({ weight: [1, 2], posWeight: [1, 2, 3, 4], backend: b }).forward(probs23(), probs23()), message: "The size of tensor a (4) must match the size of tensor b (3) at non-singleton dimension 1", type: RangeError },
  { loss: "BCEWithLogitsLoss", name: "gradInput over the target", act: (C, b) => { const t = probs23(); return new C({ backend: b }).forwardBackward(probs23(), t, { gradInput: t.data }); }, message: "BCEWithLogitsLoss: gradInput shares memory with target, which is read while the gradient is written", type: RangeError },
  { loss: "BCELoss", name: "input outside [0, 1]", act: (C, b) => new C({ backend: b }).forward({ data: new Float32Array([0.5, 1.5, 0, 0, 0, 0]), shape: [2, 3] }, probs23()), message: "all elements of input should be between 0 and 1", type: RangeError },
  { loss: "BCELoss", name: "NaN input", act: (C, b) => new C({ backend: b }).forward({ data: new Float32Array([0.5, NaN, 0, 0, 0, 0]), shape: [2, 3] }, probs23()), message: "all elements of input should be between 0 and 1", type: RangeError },
  { loss: "BCELoss", name: "target size", act: (C, b) => new C({ backend: b }).forward(probs23(), new Float32Array(5)), message: "Using a target size ([5]) that is different to the input size ([2, 3]) is deprecated. Please ensure they have the same size.", type: RangeError },
  { loss: "NLLLoss", name: "invalid reduction", act: (C, b) => new C({ reduction: "elementwise_mean", backend: b }), message: "elementwise_mean is not a valid value for reduction", type: RangeError },
  { loss: "FocalLoss", name: "grad_input option", act: (C, b) => new C({ backend: b }).forwardBackward(x35(), t3(), { grad_input: new Float32Array(15) }), message: "FocalLoss.forwardBackward got an unknown option 'grad_input'; did you mean 'gradInput'?", type: TypeError },
  { loss: "FocalLoss", name: "NaN alpha", act: (C, b) => new C({ alpha: [0.25, NaN, 1, 1, 1], backend: b }), message: "alpha[1] = NaN: weights must be finite", type: RangeError },
  { loss: "BCEWithLogitsLoss", name: "infinite posWeight", act: (C, b) => new C({ posWeight: [1, Infinity, 1], backend: b }), message: "posWeight[1] = Infinity: weights must be finite", type: RangeError },
  { loss: "BCEWithLogitsLoss", name: "gradOutput shape for 'none'", act: (C, b) => new C({ reduction: "none", backend: b }).forwardBackward(probs23(), probs23(), { gradOutput: new Float32Array(5) }), message: "BCEWithLogitsLoss: Mismatch in shape: gradOutput has a shape of [5] and the loss has a shape of [2, 3] (6 elements).", type: RangeError },
  { loss: "SigmoidFocalLoss", name: "Float64Array input", act: (C, b) => new C({ backend: b }).forward({ data: new Float64Array(6), shape: [2, 3] }, probs23()), message: "input.data must be a Float32Array, got Float64Array (convert with Float32Array.from)", type: TypeError },
  { loss: "BCELoss", name: "gradInput length", act: (C, b) => new C({ backend: b }).forwardBackward(probs23(), probs23(), { gradInput: new Float32Array(5) }), message: "BCELoss: gradInput has 5 elements but the input has 6", type: RangeError },
  // --- package settings ---
  { loss: "CrossEntropyLoss", name: "configure: unknown option", act: () => api.configure({ workspace: 1 } as never), message: "configure() got an unknown option 'workspace'; valid options are 'workspaceBytes'", type: TypeError },
  { loss: "CrossEntropyLoss", name: "configure: snake_case option", act: () => api.configure({ workspace_bytes: 1 } as never), message: "configure() got an unknown option 'workspace_bytes'; did you mean 'workspaceBytes'?", type: TypeError },
  { loss: "CrossEntropyLoss", name: "configure: zero workspace", act: () => api.configure({ workspaceBytes: 0 }), message: "configure(): workspaceBytes must be a positive integer (bytes), got 0", type: RangeError },
];

/** Wasm memory and workspace sizes of the wasm backends (none for 'js'). */
function wasmState(backend: api.BackendName): [number, number] | undefined {
  if (backend === "js") return undefined;
  const b = resolveBackend(backend) as WasmBackend;
  return [b.exports.memory.buffer.byteLength, b.workspace.bytes];
}

describe("bad input: the message, then a valid call still right, nothing leaked", () => {
  beforeAll(() => {
    // Warm-up: each backend's workspace at its size for the valid calls.
    for (const backend of BACKENDS) for (const name of Object.keys(LOSSES) as LossName[]) expectValidCall(name, backend);
  });
  for (const backend of BACKENDS) {
    describe(`backend ${backend}`, () => {
      for (const row of ROWS) {
        it(`${row.loss}: ${row.name}`, () => {
          const before = wasmState(backend);
          let error: unknown;
          try {
            row.act(LOSSES[row.loss].ctor, backend);
          } catch (e) {
            error = e;
          }
          expect(error, "expected an error").toBeInstanceOf(Error);
          expect((error as Error).message).toBe(row.message);
          if (row.type) expect(error).toBeInstanceOf(row.type);
          expectValidCall(row.loss, backend);
          expect(wasmState(backend), "wasm memory and workspace unchanged").toEqual(before);
        });
      }
    });
  }
});

describe("errors inside a wasm call leave the instance working", () => {
  afterAll(() => api.configure({ workspaceBytes: api.DEFAULT_WORKSPACE_BYTES }));

  for (const name of ["simd", "scalar"] as const) {
    it(`${name}: a kernel error in a later chunk, then a valid call`, () => {
      const b = resolveBackend(name) as WasmBackend;
      expectValidCall("CrossEntropyLoss", name);
      // Bypass the TypeScript checks to reach the kernel's own: target 99 in the 3rd chunk.
      api.configure({ workspaceBytes: 4096 });
      const C = 100;
      const rows = 40;
      const classes = new Int32Array(rows).map((_, i) => i % C);
      classes[25] = 999;
      const before = [b.exports.memory.buffer.byteLength, b.workspace.bytes];
      const input = new Float32Array(rows * C).fill(0.5);
      const grad = new Float32Array(rows * C);
      expect(() =>
        b.crossEntropy({ layout: { outer: rows, classes: C, inner: 1 }, input, target: { kind: "index", classes }, labelSmoothing: 0, upstream: 1, grad }),
      ).toThrow("Target 999 is out of bounds.");
      expect(b.exports.last_error(0), "the kernel error is cleared").toBe(0);
      expect(input.every((v) => v === 0.5), "the caller's input is untouched").toBe(true);
      expect([b.exports.memory.buffer.byteLength, b.workspace.bytes]).toEqual(before);
      api.configure({ workspaceBytes: api.DEFAULT_WORKSPACE_BYTES });
      expectValidCall("CrossEntropyLoss", name);
    });

    it(`${name}: a failed allocation (beyond 4 GiB), then a valid call`, () => {
      const b = resolveBackend(name) as WasmBackend;
      expectValidCall("CrossEntropyLoss", name);
      const memory = b.exports.memory.buffer.byteLength;
      expect(() => b.workspace.begin(5 * 2 ** 30)).toThrow("fused-loss: cannot allocate 5368709120 bytes of WebAssembly memory (wasm32 memory is limited to 4 GiB)");
      expect(b.exports.memory.buffer.byteLength).toBe(memory);
      expectValidCall("CrossEntropyLoss", name);
      expect(b.exports.memory.buffer.byteLength).toBe(memory);
    });
  }
});
