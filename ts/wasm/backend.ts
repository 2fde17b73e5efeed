/**
 * The wasm backends (SIMD and scalar builds share this code): copy a chunk of the caller's
 * arrays into a reused workspace in wasm memory, run the kernel in place, copy the results out.
 *
 * Inputs larger than the workspace cap are processed in chunks of whole samples, or of
 * spatial positions within one sample, so the memory this package holds stays bounded.
 * Kernels accumulate the loss sum in position order across chunks, so the result does not
 * depend on the chunking.
 */
import { IGNORED, type Backend, type BackendName, type CrossEntropyArgs, type KernelIO } from "../backend.js";
import { elements, positions, type Layout } from "../tensor.js";
import { workspaceBytes } from "../config.js";
import { Workspace, type WasmExports } from "./memory.js";

/** A part of the input the kernel sees as one contiguous `(outer, C, inner)` layout. */
interface Chunk {
  /** First sample and number of samples. */
  n0: number;
  samples: number;
  /** Spatial range within the sample (the whole `0..inner` unless one sample is split). */
  s0: number;
  span: number;
  layout: Layout;
}

/** Splits `layout` so that each chunk needs at most `budget` bytes at `bytesPerPosition`. */
function* chunksOf(layout: Layout, bytesPerPosition: number, budget: number): Generator<Chunk> {
  const { outer, classes, inner } = layout;
  const fit = Math.max(1, Math.floor(budget / Math.max(1, bytesPerPosition)));
  if (inner === 0 || outer === 0) {
    yield { n0: 0, samples: outer, s0: 0, span: inner, layout };
    return;
  }
  if (fit >= inner || inner === 1) {
    const per = Math.max(1, Math.floor(fit / inner));
    for (let n0 = 0; n0 < outer; n0 += per) {
      const samples = Math.min(per, outer - n0);
      yield { n0, samples, s0: 0, span: inner, layout: { outer: samples, classes, inner } };
    }
    return;
  }
  // One sample is larger than the budget: split its positions (multiples of 4 keep SIMD full).
  const span = Math.max(4, fit - (fit % 4));
  for (let n0 = 0; n0 < outer; n0++) {
    for (let s0 = 0; s0 < inner; s0 += span) {
      const part = Math.min(span, inner - s0);
      yield { n0, samples: 1, s0, span: part, layout: { outer: 1, classes, inner: part } };
    }
  }
}

/** Copies the chunk's elements (`per` values per position and class: 1, or C) into `dst`. */
function copyElementsIn(src: Float32Array, dst: Float32Array, at: number, layout: Layout, chunk: Chunk): void {
  const { classes, inner } = layout;
  if (chunk.span === inner) {
    dst.set(src.subarray(chunk.n0 * classes * inner, (chunk.n0 + chunk.samples) * classes * inner), at);
    return;
  }
  const base = chunk.n0 * classes * inner + chunk.s0;
  for (let c = 0; c < classes; c++) {
    dst.set(src.subarray(base + c * inner, base + c * inner + chunk.span), at + c * chunk.span);
  }
}

function copyElementsOut(src: Float32Array, at: number, dst: Float32Array, layout: Layout, chunk: Chunk): void {
  const { classes, inner } = layout;
  if (chunk.span === inner) {
    const n = chunk.samples * classes * inner;
    dst.set(src.subarray(at, at + n), chunk.n0 * classes * inner);
    return;
  }
  const base = chunk.n0 * classes * inner + chunk.s0;
  for (let c = 0; c < classes; c++) {
    const from = at + c * chunk.span;
    dst.set(src.subarray(from, from + chunk.span), base + c * inner);
  }
}

/** First position of the chunk in per-position arrays, and its number of positions. */
function positionRange(layout: Layout, chunk: Chunk): [number, number] {
  const first = chunk.n0 * layout.inner + chunk.s0;
  return [first, first + chunk.samples * chunk.span];
}

export { DEFAULT_WORKSPACE_BYTES } from "../config.js";

export class WasmBackend implements Backend {
  readonly workspace: Workspace;
  /** Inputs needing more are chunked: `configure({ workspaceBytes })`, read at every call. */
  get workspaceCap(): number {
    return workspaceBytes();
  }

  constructor(
    readonly name: BackendName,
    readonly exports: WasmExports,
  ) {
    this.workspace = new Workspace(exports);
  }

  /** Throws the kernel's error, if it reported one (it returns NaN then). */
  private checkKernel(result: number): number {
    if (Number.isNaN(result) && this.exports.last_error(0) !== 0) {
      const [code, a, b] = [0, 1, 2].map((i) => this.exports.last_error(i));
      this.exports.clear_error();
      // The TypeScript layer validates first; reaching this means inconsistent buffers.
      throw code === 1
        ? new RangeError(`Target ${b} is out of bounds.`)
        : new RangeError(`fused-loss: buffer length ${b} where ${a} was expected`);
    }
    return result;
  }

  crossEntropy(args: CrossEntropyArgs): number {
    const { layout, target, weight } = args;
    const C = layout.classes;
    const prob = target.kind === "prob";
    const perPosition = typeof args.upstream === "object";
    const wantGrad = args.upstream !== undefined && args.grad !== undefined;
    // Bytes per position: logits, target, upstream, loss.
    const bytesPerPosition = 4 * (C + (prob ? C : 1) + (perPosition ? 1 : 0) + (args.losses ? 1 : 0));
    const fixed = weight ? 4 * C : 0;
    let acc = 0;
    for (const chunk of chunksOf(layout, bytesPerPosition, this.workspaceCap - fixed)) {
      const n = elements(chunk.layout);
      const p = positions(chunk.layout);
      const ws = this.workspace;
      ws.begin(fixed + 4 * (n + (prob ? n : p) + (perPosition ? p : 0) + (args.losses ? p : 0)));
      const wPtr = weight ? ws.f32(weight) : 0;
      const dataPtr = ws.take(4 * n);
      copyElementsIn(args.input, ws.heapF32(), dataPtr >> 2, layout, chunk);
      const [first, last] = positionRange(layout, chunk);
      let targetPtr: number;
      if (target.kind === "prob") {
        targetPtr = ws.take(4 * n);
        copyElementsIn(target.probs, ws.heapF32(), targetPtr >> 2, layout, chunk);
      } else {
        targetPtr = ws.i32(target.classes.subarray(first, last));
      }
      const upPtr = perPosition ? ws.f32((args.upstream as Float32Array).subarray(first, last)) : 0;
      const lossPtr = args.losses ? ws.take(4 * p) : 0;
      const mode = args.upstream === undefined || !wantGrad ? 0 : perPosition ? 2 : 1;
      acc = this.checkKernel(
        this.exports.cross_entropy(
          chunk.layout.outer, C, chunk.layout.inner, dataPtr, prob ? 1 : 0, targetPtr, IGNORED, wPtr,
          args.labelSmoothing, mode, typeof args.upstream === "number" ? args.upstream : 0, upPtr, lossPtr, acc,
        ),
      );
      const heap = ws.heapF32();
      if (wantGrad) copyElementsOut(heap, dataPtr >> 2, args.grad!, layout, chunk);
      if (args.losses) args.losses.set(heap.subarray(lossPtr >> 2, (lossPtr >> 2) + p), first);
    }
    return acc;
  }
}

export type { KernelIO };
