/**
 * The zero-copy path: tensors allocated in a wasm backend's memory (`allocTensor`) as input,
 * gradient buffer, targets and gradOutput give bit for bit what the copying path gives, for
 * every loss, layout and workspace cap; views survive memory growth; freeing, foreign
 * backends and stale views are clear errors, never a wrong number.
 */
import { afterEach, describe, expect, it } from "vitest";
import * as api from "../ts/index.js";
import { resolveBackend } from "../ts/backend.js";
import type { WasmBackend } from "../ts/wasm/backend.js";
import { mulberry32 } from "./browser/mulberry32.js";

type Loss = {
  forward(input: api.Tensor, target: never): number | Float32Array;
  forwardBackward(input: api.Tensor, target: never, o?: api.BackwardOptions): api.LossAndGrad;
};

interface Case {
  name: string;
  make(backend: api.BackendName, reduction: api.Reduction): Loss;
  shape: number[];
  /** The target for `shape`: index targets (a plain Int32Array) or a float tensor in the input's layout. */
  target(rand: () => number): { data: Int32Array | Float32Array; shape: number[] };
  /** Logits or, for BCE, probabilities. */
  value(rand: () => number): number;
  /** The 'none' loss has one element per position (true) or per element (false). */
  perPosition: boolean;
}

const logit = (r: () => number) => (r() - 0.5) * 8;
const indexTarget = (shape: number[], rand: () => number) => {
  const classes = shape[1];
  const pos = [shape[0], ...shape.slice(2)];
  const n = pos.reduce((a, b) => a * b, 1);
  return { data: Int32Array.from({ length: n }, () => Math.floor(rand() * classes)), shape: pos };
};
const probTarget = (shape: number[], rand: () => number) => {
  const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand());
  return { data, shape };
};
const as = (l: unknown) => l as Loss;

/** Every loss on `shape`. */
const casesFor = (shape: number[]): Case[] => [
  {
    name: `CrossEntropyLoss index ${shape}`,
    make: (backend, reduction) =>
      as(new api.CrossEntropyLoss({ backend, reduction, labelSmoothing: 0.1, weight: Array.from({ length: shape[1] }, (_, i) => [0.5, 1, 2, 1, 1, 3][i % 6]) })),
    shape, target: (r) => indexTarget(shape, r), value: logit, perPosition: true,
  },
  {
    name: `CrossEntropyLoss probabilities ${shape}`,
    make: (backend, reduction) => as(new api.CrossEntropyLoss({ backend, reduction })),
    shape, target: (r) => probTarget(shape, r), value: logit, perPosition: true,
  },
  {
    name: `FocalLoss ${shape}`,
    make: (backend, reduction) => as(new api.FocalLoss({ backend, reduction, gamma: 2, alpha: Array.from({ length: shape[1] }, (_, i) => 0.1 + (i % 18) / 20) })),
    shape, target: (r) => indexTarget(shape, r), value: logit, perPosition: true,
  },
  {
    name: `NLLLoss ${shape}`,
    make: (backend, reduction) => as(new api.NLLLoss({ backend, reduction })),
    shape, target: (r) => indexTarget(shape, r), value: (r) => Math.log(r() + 1e-3), perPosition: true,
  },
  {
    name: `BCEWithLogitsLoss ${shape}`,
    make: (backend, reduction) =>
      as(new api.BCEWithLogitsLoss({ backend, reduction, weight: { data: Float32Array.from({ length: shape[1] }, (_, i) => 1 + i), shape: [shape[1], ...shape.slice(2).map(() => 1)] }, posWeight: [2] })),
    shape, target: (r) => probTarget(shape, r), value: logit, perPosition: false,
  },
  {
    name: `BCELoss ${shape}`,
    make: (backend, reduction) => as(new api.BCELoss({ backend, reduction })),
    shape, target: (r) => probTarget(shape, r), value: (r) => r(), perPosition: false,
  },
  {
    name: `SigmoidFocalLoss ${shape}`,
    make: (backend, reduction) => as(new api.SigmoidFocalLoss({ backend, reduction, gamma: 1.5 })),
    shape, target: (r) => probTarget(shape, r), value: logit, perPosition: false,
  },
];
const CASES = [[7, 13], [3, 5, 6, 7]].flatMap(casesFor);

const WASM: api.BackendName[] = ["simd", "scalar"];
const CAPS = [api.DEFAULT_WORKSPACE_BYTES, 256];
const bits = (a: Float32Array | number) => (typeof a === "number" ? [a] : Array.from(new Uint32Array(Float32Array.from(a).buffer)));
/** `bits` with every NaN as one (wasm does not fix NaN payloads). */
const bitsNaN = (a: Float32Array | number) => bits(typeof a === "number" ? a : Float32Array.from(a, (v) => (Number.isNaN(v) ? NaN : v)));

const live: api.AllocatedTensor[] = [];
function alloc(shape: number[], backend: api.BackendName, values?: ArrayLike<number>): api.AllocatedTensor {
  const t = api.allocTensor(shape, { backend });
  if (values) t.data.set(values);
  live.push(t);
  return t;
}
afterEach(() => {
  for (const t of live.splice(0)) t.free();
  api.configure({ workspaceBytes: api.DEFAULT_WORKSPACE_BYTES });
});

const wasmBackend = (name: api.BackendName) => resolveBackend(name) as unknown as WasmBackend;

describe.each(WASM)("zero copy on the %s backend", (backend) => {
  describe.each(CASES)("$name", (c) => {
    for (const reduction of ["mean", "none"] as api.Reduction[]) {
      it(`${reduction}: resident input, target, gradOutput and gradient = the copying path, bit for bit, for every workspace cap`, () => {
        const rand = mulberry32(c.shape.length * 31 + c.shape[1]);
        const n = c.shape.reduce((a, b) => a * b, 1);
        const values = Float32Array.from({ length: n }, () => c.value(rand));
        const target = c.target(rand);
        const lossLength = c.perPosition ? target.data.length / (target.data instanceof Float32Array ? c.shape[1] : 1) : n;
        const up = reduction === "none" ? Float32Array.from({ length: lossLength }, () => rand() * 2 - 1) : 0.75;
        for (const cap of CAPS) {
          api.configure({ workspaceBytes: cap });
          const loss = c.make(backend, reduction);
          const copied = loss.forwardBackward({ data: values.slice(), shape: c.shape }, target as never, { gradOutput: up });
          const forwardCopied = loss.forward({ data: values.slice(), shape: c.shape }, target as never);

          const input = alloc(c.shape, backend, values);
          const residentTarget =
            target.data instanceof Float32Array ? { data: alloc(target.shape, backend, target.data).data, shape: target.shape } : target;
          const residentUp = typeof up === "number" ? up : alloc([up.length], backend, up).data;
          const grad = alloc(c.shape, backend);
          // Out of place: the gradient lands in the resident buffer, the input stays as it was.
          const out = loss.forwardBackward(input, residentTarget as never, { gradOutput: residentUp, gradInput: grad.data });
          expect(bits(out.loss)).toEqual(bits(copied.loss));
          expect(bits(out.grad)).toEqual(bits(copied.grad));
          expect(out.grad.buffer).toBe(grad.data.buffer);
          expect(out.grad.byteOffset).toBe(grad.data.byteOffset);
          expect(bits(input.data)).toEqual(bits(values));
          expect(bits(loss.forward(input, residentTarget as never))).toEqual(bits(forwardCopied));
          // In place: the input's own memory receives the gradient.
          const inPlace = loss.forwardBackward(input, residentTarget as never, { gradOutput: residentUp, gradInput: input.data });
          expect(bits(inPlace.loss)).toEqual(bits(copied.loss));
          expect(bits(input.data)).toEqual(bits(copied.grad));
          for (const t of live.splice(0)) t.free();
        }
      });
    }
  });

  // Out of place between two resident tensors (rows and element-wise: the kernel reads the
  // input where it is; spatial: the input is copied into the gradient tensor first), the
  // input must come back as it was. The shapes reach rows of one and of several blocks,
  // spatial tiles of one and of several blocks and the SIMD tails; the logits include
  // ±Infinity and NaN.
  const withSpecials = (value: Case["value"]) => (r: () => number) => {
    const u = r();
    return u < 0.003 ? NaN : u < 0.006 ? Infinity : u < 0.009 ? -Infinity : value(r);
  };
  describe.each([[5, 13], [3, 2050], [3, 5, 6, 7], [2, 300, 3, 7]].flatMap(casesFor))("$name", (c) => {
    it("out of place leaves the input unchanged and gives the in-place and copying gradient, for every workspace cap", () => {
      const rand = mulberry32(c.shape.reduce((a, b) => a * b, 1));
      const n = c.shape.reduce((a, b) => a * b, 1);
      const value = c.name.startsWith("BCELoss") ? c.value : withSpecials(c.value);
      const values = Float32Array.from({ length: n }, () => value(rand));
      const target = c.target(rand);
      for (const cap of CAPS) {
        api.configure({ workspaceBytes: cap });
        const loss = c.make(backend, "sum");
        const copied = loss.forwardBackward({ data: values.slice(), shape: c.shape }, target as never);
        const input = alloc(c.shape, backend, values);
        const probs = target.data instanceof Float32Array ? alloc(target.shape, backend, target.data) : undefined;
        const grad = alloc(c.shape, backend, new Float32Array(n).fill(1234.5));
        const fromOrdinary = alloc(c.shape, backend);
        // (Views read at each call: an allocation may grow wasm memory, detaching older ones.)
        const residentTarget = () => (probs ? { data: probs.data, shape: target.shape } : target) as never;
        const out = loss.forwardBackward(input, residentTarget(), { gradInput: grad.data });
        expect(bits(input.data), "input after the out-of-place call").toEqual(bits(values));
        expect(bitsNaN(out.loss)).toEqual(bitsNaN(copied.loss));
        expect(bitsNaN(grad.data)).toEqual(bitsNaN(copied.grad));
        // An ordinary input into a resident gradient buffer (copied there, then in place).
        loss.forwardBackward({ data: values.slice(), shape: c.shape }, residentTarget(), { gradInput: fromOrdinary.data });
        expect(bitsNaN(fromOrdinary.data)).toEqual(bitsNaN(copied.grad));
        const inPlace = loss.forwardBackward(input, residentTarget(), { gradInput: input.data });
        expect(bitsNaN(inPlace.loss)).toEqual(bitsNaN(copied.loss));
        expect(bitsNaN(input.data)).toEqual(bitsNaN(copied.grad));
        for (const t of live.splice(0)) t.free();
      }
    });
  });

  it("a tensor's view is rebuilt after wasm memory grows; the returned gradient is a live view", () => {
    const b = wasmBackend(backend);
    const shape = [4, 10];
    const rand = mulberry32(7);
    const values = Float32Array.from({ length: 40 }, () => logit(rand));
    const target = indexTarget(shape, rand);
    const input = alloc(shape, backend, values);
    const grad = alloc(shape, backend);
    const stale = input.data;
    const before = b.exports.memory.buffer.byteLength;
    const big = alloc([before / 4], backend); // as large as all of memory: it must grow
    expect(b.exports.memory.buffer.byteLength).toBeGreaterThan(before);
    expect(stale.length).toBe(0); // growth detached the old view
    expect(Array.from(input.data)).toEqual(Array.from(values));
    const loss = new api.CrossEntropyLoss({ backend });
    const expected = new api.CrossEntropyLoss({ backend: "js" }).forwardBackward({ data: values, shape }, target);
    // A gradient view taken before a call that grows memory (a larger workspace) comes back live.
    api.configure({ workspaceBytes: 64 << 20 });
    const huge = new Float32Array(3 << 20); // copied through the workspace: grows it
    new api.CrossEntropyLoss({ backend }).forward({ data: huge, shape: [3 << 10, 1 << 10] }, new Int32Array(3 << 10));
    const out = loss.forwardBackward(input, target, { gradInput: grad.data });
    expect(out.grad.length).toBe(40);
    expect(out.grad.buffer).toBe(b.exports.memory.buffer);
    for (let i = 0; i < 40; i++) expect(Math.abs(out.grad[i] - expected.grad[i])).toBeLessThan(1e-6);
    expect(Math.abs((out.loss as number) - (expected.loss as number))).toBeLessThan(1e-6);
    big.free();
  });

  it("a stale view kept across growth is named as detached, not read as empty data", () => {
    const input = alloc([2, 3], backend, [1, 2, 3, 4, 5, 6]);
    const view = input.data;
    alloc([wasmBackend(backend).exports.memory.buffer.byteLength / 4], backend);
    expect(view.length).toBe(0);
    expect(() => new api.CrossEntropyLoss({ backend }).forward({ data: view, shape: [2, 3] }, [0, 1])).toThrow(/detached.*read tensor\.data again/);
    expect(new api.CrossEntropyLoss({ backend }).forward({ data: input.data, shape: [2, 3] }, [0, 1])).toBeCloseTo(1.9076, 4);
  });

  it("free(): memory is reused (no growth over many alloc/free cycles), the tensor is unusable after it, a view of it is refused", () => {
    const b = wasmBackend(backend);
    const liveBefore = b.liveTensors;
    for (let i = 0; i < 3; i++) api.allocTensor([1 << 18], { backend }).free();
    const size = b.exports.memory.buffer.byteLength;
    for (let i = 0; i < 200; i++) {
      const t = api.allocTensor([1 << 18], { backend });
      t.data[0] = i;
      t.free();
      t.free(); // a second free does nothing
    }
    expect(b.exports.memory.buffer.byteLength).toBe(size);
    expect(b.liveTensors).toBe(liveBefore);
    const t = api.allocTensor([2, 3], { backend });
    const view = t.data;
    t.free();
    expect(t.freed).toBe(true);
    expect(() => t.data).toThrow(/freed/);
    expect(() => new api.CrossEntropyLoss({ backend }).forward({ data: view, shape: [2, 3] }, [0, 1])).toThrow(/outside every live tensor/);
    // The backend still works after the errors.
    expect(new api.CrossEntropyLoss({ backend }).forward({ data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] }, [0, 1])).toBeCloseTo(1.9076, 4);
  });

  it("memoryStats() reports the backend's wasm memory, workspace and live tensors", () => {
    new api.CrossEntropyLoss({ backend }).forward({ data: new Float32Array(6), shape: [2, 3] }, [0, 1]); // loaded
    const stats = () => api.memoryStats().find((s) => s.backend === backend)!;
    const b = wasmBackend(backend);
    const before = stats();
    expect(before.memoryBytes).toBe(b.exports.memory.buffer.byteLength);
    expect(before.workspaceBytes).toBe(b.workspace.bytes);
    expect(before.tensors).toBe(b.liveTensors);
    const t = api.allocTensor([3, 5], { backend });
    expect(stats().tensors).toBe(before.tensors + 1);
    expect(stats().tensorBytes).toBe(before.tensorBytes + 60);
    t.free();
    expect(stats().tensors).toBe(before.tensors);
    expect(stats().tensorBytes).toBe(before.tensorBytes);
  });

  it("a tensor of another backend's memory is refused with the fix in the message", () => {
    const other = backend === "simd" ? "scalar" : "simd";
    const t = alloc([2, 3], other, [1, 2, 3, 4, 5, 6]);
    for (const name of [backend, "js"] as api.BackendName[]) {
      expect(() => new api.CrossEntropyLoss({ backend: name }).forward(t, [0, 1])).toThrow(
        new RegExp(`'${other}' backend's wasm memory.*runs on the '${name}' backend`),
      );
    }
    expect(() => new api.CrossEntropyLoss({ backend }).forwardBackward({ data: new Float32Array(6), shape: [2, 3] }, [0, 1], { gradInput: t.data })).toThrow(/gradInput lives in/);
  });
});

describe("allocTensor", () => {
  it("on the js backend gives an ordinary zero-filled array", () => {
    const t = api.allocTensor([2, 3], { backend: "js" });
    expect(t.data).toBeInstanceOf(Float32Array);
    expect(Array.from(t.data)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(t.backend).toBe("js");
    expect(t.shape).toEqual([2, 3]);
    expect(Object.isFrozen(t.shape)).toBe(true);
    t.data.set([1, 2, 3, 4, 5, 6]);
    expect(new api.CrossEntropyLoss({ backend: "js" }).forward(t, [0, 1])).toBeCloseTo(1.9076, 4);
    t.free();
  });

  it("rejects a bad shape, an unknown option and a tensor too large for wasm32", () => {
    expect(() => api.allocTensor([2, -1])).toThrow(/shape must be an array of non-negative integers/);
    expect(() => api.allocTensor([2, 1.5])).toThrow(/shape must be an array of non-negative integers/);
    expect(() => api.allocTensor([2, 3], { backnd: "simd" } as never)).toThrow(/backnd.*backend/);
    expect(() => api.allocTensor([1 << 16, 1 << 15], { backend: "simd" })).toThrow(/cannot allocate a tensor of shape \[65536, 32768\]/);
  });
});
