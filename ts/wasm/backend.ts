/**
 * The wasm backends (SIMD and scalar builds share this code): copy a chunk of the caller's
 * arrays into a reused workspace in wasm memory, run the kernel in place, copy the results out.
 *
 * Copied inputs are processed in chunks of at most `COPY_CHUNK_BYTES` (or the workspace cap,
 * if smaller) of whole samples, or of spatial positions within one sample: each chunk is
 * copied in, swept and copied out while it is in the processor's cache, and the memory this
 * package holds stays bounded.
 * Kernels accumulate the loss sum in position order across chunks, so the result does not
 * depend on the chunking.
 *
 * Zero copy: arrays that already live in this backend's memory (tensors from `allocTensor`)
 * are not copied. The kernel reads such an input where it is and writes the gradient straight
 * into a resident gradient buffer (out of place; in place when it is the input's own memory);
 * an ordinary input with a resident gradient buffer is copied into that buffer and the kernel
 * runs in place over it (see `chunked`). Element-wise targets and probabilities are read
 * where they are.
 * Only small per-position buffers (index targets, per-position `gradOutput`, 'none' losses)
 * still pass through the workspace.
 *
 * The call path allocates nothing per call (no generator, no closure, no chunk objects):
 * it matters for small inputs, where it is most of the time.
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
import { workspaceBytes } from "../config.js";
import { nllJs } from "../js/nll.js";
import type { Layout } from "../tensor.js";
import { allocOrThrow, Workspace, type WasmExports } from "./memory.js";
import { foreignTensorError, registerWasmMemory, wasmMemoryOwner } from "./memories.js";

/**
 * Most workspace bytes a copied chunk takes. The copies and the sweep of a chunk this small
 * stay in L2 instead of passing the whole input through memory three times: measured on the
 * 2-core development machine (interleaved runs, SIMD build, copying path) cross-entropy
 * (1024, 1000) +15%, (1024, 32000) +24%, sigmoid focal (1024, 1000) +7%, (8, 21, 128, 128)
 * +2-5% over one chunk of the whole input; 64 KiB to 1 MiB gave about the same.
 */
const COPY_CHUNK_BYTES = 256 << 10;

/**
 * Most workspace bytes of a chunk that is a range of positions of one spatial sample. Such a
 * range is copied one class plane at a time, and a plane's part of an array outside wasm
 * memory needs a view (an allocation): chunks of 256 KiB made a hundred KiB of views per
 * (8, 21, 128, 128) call; 1 MiB chunks make about 40 KiB (under 1% of the input) and ran as
 * fast (cross-entropy and focal +4-8% over whole samples, interleaved runs).
 */
const SPLIT_CHUNK_BYTES = 1 << 20;

/** One chunk as a kernel call sees it (one object per backend, reused: no allocation per call). */
class ChunkCall {
  /** The chunk: samples `n0..n0+samples`, positions `s0..s0+span` of each, as an
   * `(outer, C, inner)` layout of its own. */
  n0 = 0;
  samples = 0;
  s0 = 0;
  span = 0;
  outer = 0;
  inner = 0;
  /** Whether the chunk is whole samples (then its elements are contiguous from `elem0`). */
  whole = true;
  elem0 = 0;
  /** The chunk's positions in per-position arrays: `first..last`. */
  first = 0;
  last = 0;
  /** Addresses in wasm memory: the data the kernel reads (logits in, and the gradient out
   * when `grad` is 0), the gradient when out of place (else 0), the upstream gradient (0
   * unless one per position), the losses (0 unless wanted). */
  data = 0;
  grad = 0;
  up = 0;
  losses = 0;
  /** The kernel's upstream mode: 0 none, 1 uniform `gradValue`, 2 one per position at `up`. */
  mode = 0;
  gradValue = 0;
  /** The loss sum so far (the previous chunks'). */
  acc = 0;
  /** Address of the call's element-layout side buffer (targets, probabilities) when it lives
   * in wasm memory, else -1 (then the kernel call copies its chunk). */
  sidePtr = -1;
}

/** A kernel call for one chunk: copies its own buffers (targets, weights) and calls the export. */
type KernelCall<A extends KernelIO> = (b: WasmBackend, c: ChunkCall, ws: Workspace, args: A) => number;

/** `dst[at..] = src[from..to]`, without a temporary view when it can (a view is an allocation). */
function copyRange(dst: Float32Array | Int32Array, at: number, src: Float32Array | Int32Array, from: number, to: number): void {
  if (dst === src) dst.copyWithin(at, from, to);
  else if (from === 0 && to === src.length) dst.set(src, at);
  else if (to - from <= 16) for (let i = from; i < to; i++) dst[at + i - from] = src[i];
  else dst.set(src.subarray(from, to), at);
}

/** Copies the chunk's elements from `src` (whose element 0 is at `base`) to `dst[at..]`. */
function copyChunkIn(src: Float32Array, base: number, dst: Float32Array, at: number, classes: number, inner: number, c: ChunkCall): void {
  if (c.whole) {
    copyRange(dst, at, src, base + c.elem0, base + c.elem0 + c.samples * classes * inner);
    return;
  }
  const from = base + c.n0 * classes * inner + c.s0;
  for (let k = 0; k < classes; k++) copyRange(dst, at + k * c.span, src, from + k * inner, from + k * inner + c.span);
}

/** Copies the chunk's elements from `src[at..]` back to their places in `dst` (element 0 at `base`). */
function copyChunkOut(src: Float32Array, at: number, dst: Float32Array, base: number, classes: number, inner: number, c: ChunkCall): void {
  if (c.whole) {
    const n = c.samples * classes * inner;
    copyRange(dst, base + c.elem0, src, at, at + n);
    return;
  }
  const to = base + c.n0 * classes * inner + c.s0;
  for (let k = 0; k < classes; k++) copyRange(dst, to + k * inner, src, at + k * c.span, at + k * c.span + c.span);
}

export { DEFAULT_WORKSPACE_BYTES } from "../config.js";

export class WasmBackend implements Backend {
  readonly workspace: Workspace;
  /** Live tensors from `allocTensor`: address → bytes. */
  private readonly tensors = new Map<number, number>();
  private readonly call = new ChunkCall();
  /** Inputs needing more are chunked: `configure({ workspaceBytes })`, read at every call. */
  get workspaceCap(): number {
    return workspaceBytes();
  }

  constructor(
    readonly name: BackendName,
    readonly exports: WasmExports,
  ) {
    this.workspace = new Workspace(exports);
    registerWasmMemory(exports.memory, name, () => {
      let tensorBytes = 0;
      for (const bytes of this.tensors.values()) tensorBytes += bytes;
      return { workspaceBytes: this.workspace.bytes, tensors: this.tensors.size, tensorBytes };
    });
  }

  /** Allocates a tensor of `bytes` in this backend's memory (see `allocTensor`). */
  allocTensorBytes(bytes: number): number {
    const ptr = allocOrThrow(this.exports, bytes);
    this.tensors.set(ptr, bytes);
    return ptr;
  }

  /** Frees a tensor from [`allocTensorBytes`]; a second call for the same address does nothing. */
  freeTensor(ptr: number): void {
    const bytes = this.tensors.get(ptr);
    if (bytes === undefined) return;
    this.tensors.delete(ptr);
    this.exports.dealloc(ptr, bytes);
  }

  /** Number of live tensors (for tests and leak checks). */
  get liveTensors(): number {
    return this.tensors.size;
  }

  /**
   * The address of `view` when it lies in this backend's memory (inside a live tensor), -1
   * for an ordinary array. Views of another backend's memory, and views of this memory
   * outside every live tensor (a freed tensor's), are errors: never a silent wrong result.
   */
  residentPtr(view: ArrayBufferView, what: string): number {
    if (view.buffer !== this.exports.memory.buffer) {
      const owner = wasmMemoryOwner(view);
      if (owner !== undefined) throw foreignTensorError(what, owner, this.name);
      return -1;
    }
    const start = view.byteOffset;
    const end = start + view.byteLength;
    const exact = this.tensors.get(start);
    if (exact !== undefined && end <= start + exact) return start;
    for (const [ptr, bytes] of this.tensors) if (start >= ptr && end <= ptr + bytes) return start;
    throw new RangeError(`fused-loss: ${what} is a view of wasm memory outside every live tensor (was its tensor freed?)`);
  }

  /** Throws the kernel's error, if it reported one (it returns NaN then). */
  private checkKernel(result: number): number {
    if (result === result || this.exports.last_error(0) === 0) return result;
    const code = this.exports.last_error(0);
    const a = this.exports.last_error(1);
    const b = this.exports.last_error(2);
    this.exports.clear_error();
    // The TypeScript layer validates first; reaching this means inconsistent buffers.
    throw code === 1
      ? new RangeError(`Target ${b} is out of bounds.`)
      : code === 3
        ? new RangeError("all elements of input should be between 0 and 1")
        : new RangeError(`fused-loss: buffer length ${b} where ${a} was expected`);
  }

  /**
   * Runs a kernel over `args` chunk by chunk (the same for every kernel): places the chunk's
   * input, per-position upstream gradient and loss buffer in wasm memory, lets `call` place
   * its own buffers (targets, weights) and call the raw export, then copies the gradient and
   * losses out. `extraPerPosition`: bytes of `call`'s per-position buffers; `fixed`: bytes of
   * the buffers it copies whole into every chunk; `side`: its element-layout buffer, if any
   * (read in place when it lives in wasm memory), `sidePerPosition` bytes of it per position. Each chunk continues the previous one's
   * loss sum, so the result does not depend on the chunking.
   */
  private chunked<A extends KernelIO>(
    args: A, extraPerPosition: number, fixed: number, call: KernelCall<A>, side?: Float32Array, sidePerPosition = 0,
  ): number {
    const { outer, classes, inner } = args.layout;
    const c = this.call;
    const wantGrad = args.upstream !== undefined && args.grad !== undefined;
    const perPosition = typeof args.upstream === "object";
    // Addresses of resident arrays now: growing the workspace detaches every view of memory.
    const inputPtr = this.residentPtr(args.input, "input.data");
    const grad = wantGrad ? args.grad! : undefined;
    const inPlace = grad !== undefined && grad.buffer === args.input.buffer && grad.byteOffset === args.input.byteOffset;
    const gradPtr = grad === undefined ? -1 : inPlace ? inputPtr : this.residentPtr(grad, "gradInput");
    const upPtr = perPosition ? this.residentPtr(args.upstream as Float32Array, "gradOutput") : -1;
    c.sidePtr = side === undefined ? -1 : this.residentPtr(side, "target");
    // With a resident gradient buffer (or none), the kernel reads the resident input and
    // writes the gradient over it or into that buffer (out of place), or, for an ordinary
    // input, runs in place over the buffer after the input is copied there. Spatial inputs
    // too are read where they are: out of place, CE and focal (8, 21, 128, 128) ran 10-13%
    // faster than a copy into the gradient buffer and an in-place sweep (interleaved runs).
    // Otherwise it runs over a copy in the workspace.
    const readsInput = inputPtr >= 0;
    const workPtr = gradPtr >= 0 || !wantGrad ? (readsInput ? inputPtr : gradPtr) : -1;
    const outPtr = gradPtr >= 0 && gradPtr !== workPtr ? gradPtr : -1;
    const budget = this.workspaceCap - fixed;
    const lossBytes = args.losses ? 4 : 0;
    const upBytes = perPosition && upPtr < 0 ? 4 : 0;
    c.mode = !wantGrad ? 0 : perPosition ? 2 : 1;
    c.gradValue = typeof args.upstream === "number" ? args.upstream : 0;
    c.acc = 0;
    const ws = this.workspace;
    // Resident data: whole samples whose small buffers fit the cap, without copying the data.
    const residentBytes = lossBytes + upBytes + extraPerPosition - (c.sidePtr >= 0 ? sidePerPosition : 0);
    if (workPtr >= 0 && (inner <= 1 || inner * residentBytes <= budget)) {
      const perChunk = inner === 0 || outer === 0 ? Math.max(1, outer) : Math.max(1, Math.floor(budget / Math.max(1, residentBytes * inner)));
      // An ordinary input goes into the resident gradient buffer, for an in-place sweep.
      if (workPtr !== inputPtr) copyRange(ws.heapF32(), workPtr >> 2, args.input, 0, args.input.length);
      for (let n0 = 0; n0 < outer || n0 === 0; n0 += perChunk) {
        const samples = Math.min(perChunk, outer - n0);
        this.setChunk(c, inner, n0, samples, 0, inner, true, classes);
        ws.begin(fixed + residentBytes * samples * inner);
        c.data = workPtr + 4 * c.elem0;
        c.grad = outPtr >= 0 ? outPtr + 4 * c.elem0 : 0;
        this.runChunk(args, c, ws, call, upPtr, lossBytes);
        if (outer === 0) break;
      }
      return this.finishCall(args, gradPtr);
    }
    const bytesPerPosition = 4 * classes + lossBytes + upBytes + extraPerPosition;
    const positionBytes = Math.max(1, bytesPerPosition);
    // A spatial sample larger than a copy chunk is split into ranges of SPLIT_CHUNK_BYTES.
    const chunkBytes = inner > 1 && COPY_CHUNK_BYTES < inner * positionBytes ? SPLIT_CHUNK_BYTES : COPY_CHUNK_BYTES;
    const fit = Math.max(1, Math.floor(Math.min(budget, chunkBytes) / positionBytes));
    if (inner === 0 || outer === 0 || fit >= inner || inner === 1) {
      const perChunk = inner === 0 || outer === 0 ? Math.max(1, outer) : Math.max(1, Math.floor(fit / inner));
      for (let n0 = 0; n0 < outer || n0 === 0; n0 += perChunk) {
        this.setChunk(c, inner, n0, Math.min(perChunk, outer - n0), 0, inner, true, classes);
        this.copiedChunk(args, c, ws, call, fixed, bytesPerPosition, inputPtr, gradPtr, upPtr, lossBytes);
        if (outer === 0) break;
      }
    } else {
      // One sample is larger than the budget: split its positions in multiples of 4, so that
      // the kernel's 4-position tiles are the unchunked ones (bit-identical results).
      const span = Math.max(4, fit - (fit % 4));
      for (let n0 = 0; n0 < outer; n0++) {
        for (let s0 = 0; s0 < inner; ) {
          let part = Math.min(span, inner - s0);
          // A last part of one position would be a (1, C, 1) layout, which the kernel runs as
          // a row with another summation order: end on 5 positions (a tile and a tail) instead.
          if (inner - s0 - part === 1) part = part > 4 ? part - 4 : part + 1;
          this.setChunk(c, inner, n0, 1, s0, part, false, classes);
          this.copiedChunk(args, c, ws, call, fixed, bytesPerPosition, inputPtr, gradPtr, upPtr, lossBytes);
          s0 += part;
        }
      }
    }
    return this.finishCall(args, gradPtr);
  }

  /** The loss sum; hands back a live view of a resident gradient (the call may have grown
   * wasm memory, which detaches the caller's view). */
  private finishCall(args: KernelIO, gradPtr: number): number {
    const grad = args.grad;
    if (gradPtr >= 0 && grad !== undefined && grad.buffer !== this.exports.memory.buffer) {
      args.grad = new Float32Array(this.exports.memory.buffer, gradPtr, grad.length);
    }
    return this.call.acc;
  }

  private setChunk(c: ChunkCall, inner: number, n0: number, samples: number, s0: number, span: number, whole: boolean, classes: number): void {
    c.n0 = n0;
    c.samples = samples;
    c.s0 = s0;
    c.span = span;
    c.outer = samples;
    c.inner = span;
    c.whole = whole;
    c.elem0 = n0 * classes * inner;
    c.first = n0 * inner + s0;
    c.last = c.first + samples * span;
  }

  /** One chunk through the workspace: copy the data in, run, copy the gradient out. */
  private copiedChunk<A extends KernelIO>(
    args: A, c: ChunkCall, ws: Workspace, call: KernelCall<A>, fixed: number, bytesPerPosition: number,
    inputPtr: number, gradPtr: number, upPtr: number, lossBytes: number,
  ): void {
    const { classes, inner } = args.layout;
    const n = c.samples * classes * c.span;
    ws.begin(fixed + bytesPerPosition * c.samples * c.span);
    c.data = ws.take(4 * n);
    c.grad = 0;
    const heap = ws.heapF32();
    copyChunkIn(inputPtr >= 0 ? heap : args.input, inputPtr >= 0 ? inputPtr >> 2 : 0, heap, c.data >> 2, classes, inner, c);
    this.runChunk(args, c, ws, call, upPtr, lossBytes);
    if (c.mode !== 0) {
      const out = ws.heapF32();
      copyChunkOut(out, c.data >> 2, gradPtr >= 0 ? out : args.grad!, gradPtr >= 0 ? gradPtr >> 2 : 0, classes, inner, c);
    }
  }

  /** Places the per-position buffers, calls the kernel, copies the losses out. */
  private runChunk<A extends KernelIO>(args: A, c: ChunkCall, ws: Workspace, call: KernelCall<A>, upPtr: number, lossBytes: number): void {
    const p = c.last - c.first;
    if (c.mode === 2) {
      if (upPtr >= 0) c.up = upPtr + 4 * c.first;
      else {
        c.up = ws.take(4 * p);
        copyRange(ws.heapF32(), c.up >> 2, args.upstream as Float32Array, c.first, c.last);
      }
    } else c.up = 0;
    c.losses = lossBytes ? ws.take(4 * p) : 0;
    c.acc = this.checkKernel(call(this, c, ws, args));
    if (args.losses) copyRange(args.losses, c.first, ws.heapF32(), c.losses >> 2, (c.losses >> 2) + p);
  }

  /** The chunk's part of an element-layout side buffer: in place when resident, else copied. */
  sideIn(ws: Workspace, c: ChunkCall, side: Float32Array, classes: number, inner: number): number {
    if (c.sidePtr >= 0 && c.whole) return c.sidePtr + 4 * c.elem0;
    const at = ws.take(4 * c.samples * classes * c.span);
    const heap = ws.heapF32();
    copyChunkIn(c.sidePtr >= 0 ? heap : side, c.sidePtr >= 0 ? c.sidePtr >> 2 : 0, heap, at >> 2, classes, inner, c);
    return at;
  }

  /** The chunk's index targets, copied. */
  indexIn(ws: Workspace, c: ChunkCall, classes: Int32Array): number {
    const at = ws.take(4 * (c.last - c.first));
    copyRange(ws.heapI32(), at >> 2, classes, c.first, c.last);
    return at;
  }

  crossEntropy(args: CrossEntropyArgs): number {
    const C = args.layout.classes;
    const prob = args.target.kind === "prob";
    const probs = args.target.kind === "prob" ? args.target.probs : undefined;
    return this.chunked(args, 4 * (prob ? C : 1), args.weight ? 4 * C : 0, crossEntropyCall, probs, 4 * C);
  }

  focal(args: FocalArgs): number {
    const C = args.layout.classes;
    return this.chunked(args, 4, (args.alpha ? 4 * C : 0) + (args.weight ? 4 * C : 0), focalCall);
  }

  nllLoss(args: NllArgs): number {
    // NLL reads one element per position and its gradient is a fill of zeros: no arithmetic
    // for wasm to speed up, while copying the input in and the gradient out would cost
    // several times the loss itself. So the arrays are used where they are (ordinary or
    // resident views alike), by the same arithmetic as the crate's kernel (float32
    // products, float64 sum in position order: the same bits).
    this.residentPtr(args.input, "input.data");
    if (args.grad !== undefined) this.residentPtr(args.grad, "gradInput");
    if (typeof args.upstream === "object") this.residentPtr(args.upstream, "gradOutput");
    return nllJs(args);
  }

  bceWithLogits(args: BceWithLogitsArgs): number {
    const [extra, fixed] = binaryBytes(args.input.length, args.weight, args.posWeight);
    return this.chunked(args, extra, fixed, bceWithLogitsCall, args.target, 4);
  }

  bce(args: BceArgs): number {
    const [extra, fixed] = binaryBytes(args.input.length, args.weight, undefined);
    return this.chunked(args, extra, fixed, bceCall, args.target, 4);
  }

  sigmoidFocal(args: SigmoidFocalArgs): number {
    return this.chunked(args, 4, 0, sigmoidFocalCall, args.target, 4);
  }
}

// The kernel calls: module-level functions, so that a loss call creates no closure.

function crossEntropyCall(b: WasmBackend, c: ChunkCall, ws: Workspace, args: CrossEntropyArgs): number {
  const { target, weight } = args;
  const { classes: C, inner } = args.layout;
  const wPtr = weight ? ws.f32(weight) : 0;
  const targetPtr = target.kind === "prob" ? b.sideIn(ws, c, target.probs, C, inner) : b.indexIn(ws, c, target.classes);
  return b.exports.cross_entropy(
    c.outer, C, c.inner, c.data, c.grad, target.kind === "prob" ? 1 : 0, targetPtr, IGNORED, wPtr,
    args.labelSmoothing, c.mode, c.gradValue, c.up, c.losses, c.acc,
  );
}

function focalCall(b: WasmBackend, c: ChunkCall, ws: Workspace, args: FocalArgs): number {
  const alphaPtr = args.alpha ? ws.f32(args.alpha) : 0;
  const wPtr = args.weight ? ws.f32(args.weight) : 0;
  const targetPtr = b.indexIn(ws, c, args.target.classes);
  return b.exports.focal(
    c.outer, args.layout.classes, c.inner, c.data, c.grad, targetPtr, IGNORED, alphaPtr, wPtr, args.gamma, args.detached,
    c.mode, c.gradValue, c.up, c.losses, c.acc,
  );
}


function bceWithLogitsCall(b: WasmBackend, c: ChunkCall, ws: Workspace, args: BceWithLogitsArgs): number {
  const n = args.input.length;
  const target = b.sideIn(ws, c, args.target, 1, 1);
  const w = broadcastIn(ws, args.weight, n, c, 0);
  const pw = broadcastIn(ws, args.posWeight, n, c, 1);
  return b.exports.bce_with_logits(
    c.last - c.first, c.data, c.grad, target, w.ptr, w.len, w.repeat, w.offset, pw.ptr, pw.len, pw.repeat, pw.offset,
    c.mode, c.gradValue, c.up, c.losses, c.acc,
  );
}

function bceCall(b: WasmBackend, c: ChunkCall, ws: Workspace, args: BceArgs): number {
  const target = b.sideIn(ws, c, args.target, 1, 1);
  const w = broadcastIn(ws, args.weight, args.input.length, c, 0);
  return b.exports.bce(c.last - c.first, c.data, c.grad, target, w.ptr, w.len, w.repeat, w.offset, c.mode, c.gradValue, c.up, c.losses, c.acc);
}

function sigmoidFocalCall(b: WasmBackend, c: ChunkCall, ws: Workspace, args: SigmoidFocalArgs): number {
  const target = b.sideIn(ws, c, args.target, 1, 1);
  return b.exports.sigmoid_focal(c.last - c.first, c.data, c.grad, target, args.alpha, args.gamma, c.mode, c.gradValue, c.up, c.losses, c.acc);
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

/** A broadcast weight placed for one chunk (two reused slots: weight and pos_weight). */
interface PlacedBroadcast {
  ptr: number;
  len: number;
  repeat: number;
  offset: number;
}
const placed: [PlacedBroadcast, PlacedBroadcast] = [
  { ptr: 0, len: 0, repeat: 1, offset: 0 },
  { ptr: 0, len: 0, repeat: 1, offset: 0 },
];

/** Copies a broadcast weight for one chunk of an element-wise input (positions are elements). */
function broadcastIn(ws: Workspace, b: BroadcastArg | undefined, n: number, c: ChunkCall, slot: 0 | 1): PlacedBroadcast {
  const out = placed[slot];
  if (!b) {
    out.ptr = 0;
    out.len = 0;
    out.repeat = 1;
    out.offset = 0;
  } else if (isFullSize(b, n)) {
    out.ptr = ws.take(4 * (c.last - c.first));
    copyRange(ws.heapF32(), out.ptr >> 2, b.values, c.first, c.last);
    out.len = c.last - c.first;
    out.repeat = 1;
    out.offset = 0;
  } else {
    out.ptr = ws.f32(b.values);
    out.len = b.values.length;
    out.repeat = b.repeat;
    out.offset = c.first;
  }
  return out;
}

export type { KernelIO, Layout };
