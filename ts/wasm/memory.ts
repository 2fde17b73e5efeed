/** Wasm memory management: the raw exports, and a reused bump-allocated workspace. */
import { workspaceBytes } from "../config.js";

/** The crate's exports (see `crate/src/wasm.rs`), called directly for the lowest overhead. */
export interface WasmExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  dealloc(ptr: number, bytes: number): void;
  simd(): number;
  last_error(field: number): number;
  clear_error(): void;
  cross_entropy(
    outer: number, classes: number, inner: number, data: number, probTarget: number, target: number,
    ignoreIndex: number, weight: number, labelSmoothing: number, gradMode: number, gradValue: number,
    gradOut: number, losses: number, acc: number,
  ): number;
  focal(
    outer: number, classes: number, inner: number, data: number, target: number, ignoreIndex: number,
    alpha: number, weight: number, gamma: number, detached: boolean, gradMode: number, gradValue: number,
    gradOut: number, losses: number, acc: number,
  ): number;
  nll_loss(
    outer: number, classes: number, inner: number, data: number, target: number, ignoreIndex: number,
    weight: number, gradMode: number, gradValue: number, gradOut: number, losses: number, acc: number,
  ): number;
  /** Broadcast weights: `ptr, len, repeat, offset` (element `i` gets `ptr[((offset + i) / repeat) % len]`). */
  bce_with_logits(
    n: number, data: number, target: number, weight: number, weightLen: number, weightRepeat: number,
    weightOffset: number, posWeight: number, posWeightLen: number, posWeightRepeat: number, posWeightOffset: number,
    gradMode: number, gradValue: number, gradOut: number, losses: number, acc: number,
  ): number;
  bce(
    n: number, data: number, target: number, weight: number, weightLen: number, weightRepeat: number,
    weightOffset: number, gradMode: number, gradValue: number, gradOut: number, losses: number, acc: number,
  ): number;
  sigmoid_focal(
    n: number, data: number, target: number, alpha: number, gamma: number, gradMode: number, gradValue: number,
    gradOut: number, losses: number, acc: number,
  ): number;
}

/** Rounds up to whole 64 KiB pages so slightly larger calls do not reallocate each time. */
const roundToPage = (bytes: number): number => Math.ceil(bytes / 65536) * 65536;

/** Allocates in wasm memory or throws a clear error (never a trap). */
export function allocOrThrow(exports: WasmExports, bytes: number): number {
  const ptr = bytes > 0xffff_0000 ? 0 : exports.alloc(bytes);
  if (ptr === 0) {
    throw new RangeError(
      `fused-loss: cannot allocate ${bytes} bytes of WebAssembly memory (wasm32 memory is limited to 4 GiB)`,
    );
  }
  return ptr;
}

/**
 * One block of wasm memory reused by every call: it grows to the largest chunk seen and is
 * never freed, so steady-state calls allocate nothing and wasm memory stops growing.
 */
export class Workspace {
  private ptr = 0;
  private capacity = 0;
  private cursor = 0;
  private end = 0;
  private f32View = new Float32Array(0);
  private i32View = new Int32Array(0);

  constructor(private readonly exports: WasmExports) {}

  /** Bytes currently held in wasm memory. */
  get bytes(): number {
    return this.capacity;
  }

  /**
   * Starts a call needing `bytes` in total; grows the block if needed, and shrinks it back
   * to the cap after a call that needed more (a single position larger than the cap).
   */
  begin(bytes: number): void {
    const cap = roundToPage(workspaceBytes());
    if (bytes > this.capacity || (this.capacity > cap && bytes <= cap)) {
      const size = bytes > this.capacity ? roundToPage(bytes) : Math.max(roundToPage(bytes), cap);
      // Free first: the contents need not survive, and the allocator can then reuse the
      // space instead of holding both blocks (which would grow wasm memory by twice the cap).
      this.release();
      this.ptr = allocOrThrow(this.exports, size);
      this.capacity = size;
    }
    this.cursor = this.ptr;
    this.end = this.ptr + bytes;
  }

  /** Frees the block (the next call allocates again). */
  release(): void {
    if (this.ptr) this.exports.dealloc(this.ptr, this.capacity);
    this.ptr = 0;
    this.capacity = 0;
  }

  /** Reserves `bytes` (a multiple of 4) and returns their address. */
  take(bytes: number): number {
    const at = this.cursor;
    this.cursor += bytes;
    if (this.cursor > this.end) throw new Error("fused-loss: internal error: workspace overrun");
    return at;
  }

  /** Copies `values` into the workspace and returns their address. */
  f32(values: Float32Array): number {
    const at = this.take(4 * values.length);
    this.heapF32().set(values, at >> 2);
    return at;
  }

  i32(values: Int32Array): number {
    const at = this.take(4 * values.length);
    this.heapI32().set(values, at >> 2);
    return at;
  }

  /** A view of all wasm memory, rebuilt after the memory grew (growth detaches old views). */
  heapF32(): Float32Array {
    if (this.f32View.buffer !== this.exports.memory.buffer) this.f32View = new Float32Array(this.exports.memory.buffer);
    return this.f32View;
  }

  heapI32(): Int32Array {
    if (this.i32View.buffer !== this.exports.memory.buffer) this.i32View = new Int32Array(this.exports.memory.buffer);
    return this.i32View;
  }
}
