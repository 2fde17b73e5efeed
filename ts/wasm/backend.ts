/**
 * The wasm backends (SIMD and scalar builds share this code): copy a chunk of the caller's
 * arrays into a reused workspace in wasm memory, run the kernel in place, copy the results out.
 *
 * Inputs larger than the workspace cap are processed in chunks of whole samples, or of
 * spatial positions within one sample, so the memory this package holds stays bounded.
 * Kernels accumulate the loss sum in position order across chunks, so the result does not
 * depend on the chunking.
 */
import {
  IGNORED,
  type Backend,
  type BackendName,
  type BceArgs,
  type BceWithLogitsArgs,
  type BroadcastArg,
  type CrossEntropyArgs,
  type FocalArgs,
  type KernelIO,
  type NllArgs,
  type SigmoidFocalArgs,
} from "../backend.js";
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
  // One sample is larger than the budget: split its positions in multiples of 4, so that the
  // kernel's 4-position tiles are the unchunked ones (bit-identical results).
  const span = Math.max(4, fit - (fit % 4));
  for (let n0 = 0; n0 < outer; n0++) {
    for (let s0 = 0; s0 < inner; ) {
      let part = Math.min(span, inner - s0);
      // A last part of one position would be a (1, C, 1) layout, which the kernel runs as a
      // row with another summation order: end on 5 positions (a tile and a tail) instead.
      if (inner - s0 - part === 1) part = part > 4 ? part - 4 : part + 1;
      yield { n0, samples: 1, s0, span: part, layout: { outer: 1, classes, inner: part } };
      s0 += part;
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
        : code === 3
          ? new RangeError("all elements of input should be between 0 and 1")
          : new RangeError(`fused-loss: buffer length ${b} where ${a} was expected`);
    }
    return result;
  }

  /**
   * Runs a kernel over `args` chunk by chunk (the same for every kernel): copies the chunk's
   * input, per-position upstream gradient and loss buffer into the workspace, lets `call`
   * copy its own buffers (targets, weights) and call the raw export, then copies the
   * gradient and losses out. `extraPerPosition`: bytes of `call`'s per-position buffers;
   * `fixed`: bytes of the buffers it copies whole into every chunk. Each chunk continues the
   * previous one's loss sum, so the result does not depend on the chunking.
   */
  private chunked(args: KernelIO, extraPerPosition: number, fixed: number, call: (c: ChunkCall, ws: Workspace) => number): number {
    const { layout } = args;
    const perPosition = typeof args.upstream === "object";
    const wantGrad = args.upstream !== undefined && args.grad !== undefined;
    // Bytes per position: input, upstream, loss, and the kernel's own.
    const bytesPerPosition = 4 * (layout.classes + (perPosition ? 1 : 0) + (args.losses ? 1 : 0)) + extraPerPosition;
    const c: ChunkCall = {
      chunk: undefined as unknown as Chunk,
      first: 0,
      last: 0,
      data: 0,
      up: 0,
      losses: 0,
      mode: !wantGrad ? 0 : perPosition ? 2 : 1,
      gradValue: typeof args.upstream === "number" ? args.upstream : 0,
      acc: 0,
    };
    for (const chunk of chunksOf(layout, bytesPerPosition, this.workspaceCap - fixed)) {
      const n = elements(chunk.layout);
      const p = positions(chunk.layout);
      const ws = this.workspace;
      ws.begin(fixed + 4 * (n + (perPosition ? p : 0) + (args.losses ? p : 0)) + extraPerPosition * p);
      c.chunk = chunk;
      c.data = ws.take(4 * n);
      copyElementsIn(args.input, ws.heapF32(), c.data >> 2, layout, chunk);
      [c.first, c.last] = positionRange(layout, chunk);
      c.up = perPosition ? ws.f32((args.upstream as Float32Array).subarray(c.first, c.last)) : 0;
      c.losses = args.losses ? ws.take(4 * p) : 0;
      c.acc = this.checkKernel(call(c, ws));
      const heap = ws.heapF32();
      if (wantGrad) copyElementsOut(heap, c.data >> 2, args.grad!, layout, chunk);
      if (args.losses) args.losses.set(heap.subarray(c.losses >> 2, (c.losses >> 2) + p), c.first);
    }
    return c.acc;
  }

  crossEntropy(args: CrossEntropyArgs): number {
    const { layout, target, weight } = args;
    const C = layout.classes;
    const prob = target.kind === "prob";
    return this.chunked(args, 4 * (prob ? C : 1), weight ? 4 * C : 0, (c, ws) => {
      const wPtr = weight ? ws.f32(weight) : 0;
      let targetPtr: number;
      if (target.kind === "prob") {
        targetPtr = ws.take(4 * elements(c.chunk.layout));
        copyElementsIn(target.probs, ws.heapF32(), targetPtr >> 2, layout, c.chunk);
      } else {
        targetPtr = ws.i32(target.classes.subarray(c.first, c.last));
      }
      const { outer, inner } = c.chunk.layout;
      return this.exports.cross_entropy(
        outer, C, inner, c.data, prob ? 1 : 0, targetPtr, IGNORED, wPtr,
        args.labelSmoothing, c.mode, c.gradValue, c.up, c.losses, c.acc,
      );
    });
  }

  focal(args: FocalArgs): number {
    const { layout, alpha, weight } = args;
    const C = layout.classes;
    return this.chunked(args, 4, (alpha ? 4 * C : 0) + (weight ? 4 * C : 0), (c, ws) => {
      const alphaPtr = alpha ? ws.f32(alpha) : 0;
      const wPtr = weight ? ws.f32(weight) : 0;
      const targetPtr = ws.i32(args.target.classes.subarray(c.first, c.last));
      const { outer, inner } = c.chunk.layout;
      return this.exports.focal(
        outer, C, inner, c.data, targetPtr, IGNORED, alphaPtr, wPtr, args.gamma, args.detached,
        c.mode, c.gradValue, c.up, c.losses, c.acc,
      );
    });
  }

  nllLoss(args: NllArgs): number {
    const { layout, weight } = args;
    const C = layout.classes;
    return this.chunked(args, 4, weight ? 4 * C : 0, (c, ws) => {
      const wPtr = weight ? ws.f32(weight) : 0;
      const targetPtr = ws.i32(args.target.classes.subarray(c.first, c.last));
      const { outer, inner } = c.chunk.layout;
      return this.exports.nll_loss(outer, C, inner, c.data, targetPtr, IGNORED, wPtr, c.mode, c.gradValue, c.up, c.losses, c.acc);
    });
  }

  bceWithLogits(args: BceWithLogitsArgs): number {
    const { weight, posWeight } = args;
    const n = args.input.length;
    const [extra, fixed] = binaryBytes(n, weight, posWeight);
    return this.chunked(args, extra, fixed, (c, ws) => {
      const target = ws.f32(args.target.subarray(c.first, c.last));
      const w = broadcastIn(ws, weight, n, c);
      const pw = broadcastIn(ws, posWeight, n, c);
      return this.exports.bce_with_logits(
        c.last - c.first, c.data, target, w.ptr, w.len, w.repeat, w.offset, pw.ptr, pw.len, pw.repeat, pw.offset,
        c.mode, c.gradValue, c.up, c.losses, c.acc,
      );
    });
  }

  bce(args: BceArgs): number {
    const { weight } = args;
    const n = args.input.length;
    const [extra, fixed] = binaryBytes(n, weight, undefined);
    return this.chunked(args, extra, fixed, (c, ws) => {
      const target = ws.f32(args.target.subarray(c.first, c.last));
      const w = broadcastIn(ws, weight, n, c);
      return this.exports.bce(
        c.last - c.first, c.data, target, w.ptr, w.len, w.repeat, w.offset, c.mode, c.gradValue, c.up, c.losses, c.acc,
      );
    });
  }

  sigmoidFocal(args: SigmoidFocalArgs): number {
    return this.chunked(args, 4, 0, (c, ws) => {
      const target = ws.f32(args.target.subarray(c.first, c.last));
      return this.exports.sigmoid_focal(
        c.last - c.first, c.data, target, args.alpha, args.gamma, c.mode, c.gradValue, c.up, c.losses, c.acc,
      );
    });
  }
}

/** One chunk as a kernel call sees it (reused across chunks: no allocation per chunk). */
interface ChunkCall {
  chunk: Chunk;
  /** The chunk's positions in per-position arrays: `first..last`. */
  first: number;
  last: number;
  /** Addresses in wasm memory: the input (overwritten by the gradient), the upstream
   * gradient (0 unless one per position), the losses (0 unless wanted). */
  data: number;
  up: number;
  losses: number;
  /** The kernel's upstream mode: 0 none, 1 uniform `gradValue`, 2 one per position at `up`. */
  mode: number;
  gradValue: number;
  /** The loss sum so far (the previous chunks'). */
  acc: number;
}

/** A broadcast weight with the input's own size is sliced per chunk; a smaller one is copied whole. */
const isFullSize = (b: BroadcastArg, n: number): boolean => b.repeat === 1 && b.values.length === n;

/** Per-element and fixed workspace bytes of an element-wise kernel's target and weights. */
function binaryBytes(n: number, ...weights: (BroadcastArg | undefined)[]): [number, number] {
  let extra = 4; // the target
  let fixed = 0;
  for (const w of weights) {
    if (!w) continue;
    if (isFullSize(w, n)) extra += 4;
    else fixed += 4 * w.values.length;
  }
  return [extra, fixed];
}

const noBroadcast = { ptr: 0, len: 0, repeat: 1, offset: 0 };

/** Copies a broadcast weight for one chunk of an element-wise input (positions are elements). */
function broadcastIn(ws: Workspace, b: BroadcastArg | undefined, n: number, c: ChunkCall): typeof noBroadcast {
  if (!b) return noBroadcast;
  if (isFullSize(b, n)) return { ptr: ws.f32(b.values.subarray(c.first, c.last)), len: c.last - c.first, repeat: 1, offset: 0 };
  return { ptr: ws.f32(b.values), len: b.values.length, repeat: b.repeat, offset: c.first };
}

export type { KernelIO };
