/** Wasm memory management: the raw exports, and a reused bump-allocated workspace. */

/** The crate's exports (see `crate/src/wasm.rs`), called directly for the lowest overhead. */
export interface WasmExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  dealloc(ptr: number, bytes: number): void;
  simd(): number;
  last_error(field: number): number;
  clear_error(): void;
  /** `data` the input; `grad` where the gradient goes, 0 for over `data` (see `in_out` in wasm.rs). */
  cross_entropy(
    outer: number, classes: number, inner: number, data: number, grad: number, probTarget: number, target: number,
    ignoreIndex: number, weight: number, labelSmoothing: number, gradMode: number, gradValue: number,
    gradOut: number, losses: number, acc: number,
  ): number;
  focal(
    outer: number, classes: number, inner: number, data: number, grad: number, target: number, ignoreIndex: number,
    alpha: number, weight: number, gamma: number, detached: boolean, gradMode: number, gradValue: number,
    gradOut: number, losses: number, acc: number,
  ): number;
  /** Broadcast weights: `ptr, len, repeat, offset` (element `i` gets `ptr[((offset + i) / repeat) % len]`). */
  bce_with_logits(
    n: number, data: number, grad: number, target: number, weight: number, weightLen: number, weightRepeat: number,
    weightOffset: number, posWeight: number, posWeightLen: number, posWeightRepeat: number, posWeightOffset: number,
    gradMode: number, gradValue: number, gradOut: number, losses: number, acc: number,
  ): number;
  bce(
    n: number, data: number, grad: number, target: number, weight: number, weightLen: number, weightRepeat: number,
    weightOffset: number, gradMode: number, gradValue: number, gradOut: number, losses: number, acc: number,
  ): number;
  sigmoid_focal(
    n: number, data: number, grad: number, target: number, alpha: number, gamma: number, gradMode: number, gradValue: number,
    gradOut: number, losses: number, acc: number,
  ): number;
}

const PAGE = 65536;
/** Rounds up to whole 64 KiB pages so slightly larger calls do not reallocate each time. */
const roundToPage = (bytes: number): number => Math.ceil(bytes / PAGE) * PAGE;
/** wasm32 addresses 4 GiB at most. */
const MAX_MEMORY = 4 * 2 ** 30;

/** Allocates in wasm memory or throws a clear error (never a trap). */
export function allocOrThrow(exports: WasmExports, bytes: number): number {
  const ptr = bytes > 0xffff_0000 ? 0 : exports.alloc(bytes);
  if (ptr === 0) throw cannotAllocate(bytes);
  return ptr;
}

function cannotAllocate(bytes: number): RangeError {
  return new RangeError(`fused-loss: cannot allocate ${bytes} bytes of WebAssembly memory (wasm32 memory is limited to 4 GiB)`);
}

/** Grows wasm memory by `bytes` (whole pages) for a workspace of `size`; returns the new region's address. */
function growOrThrow(memory: WebAssembly.Memory, bytes: number, size: number): number {
  if (memory.buffer.byteLength + bytes > MAX_MEMORY) throw cannotAllocate(size);
  try {
    return memory.grow(bytes / PAGE) * PAGE;
  } catch {
    throw cannotAllocate(size);
  }
}

/**
 * One region of wasm memory reused by every call, grown to the largest chunk seen and never
 * freed, so steady-state calls allocate nothing and wasm memory stops growing.
 *
 * The region is taken with `memory.grow` at the end of wasm memory, not from the Rust
 * allocator: growing an allocator block means a new block while the old one stays in its free
 * list, so wasm memory would reach up to twice the largest workspace. At the end of memory the
 * region grows in place, and wasm memory grows by exactly the workspace's size. (The allocator
 * handles memory grown by others: it asks `memory.grow` for its own regions.)
 */
export class Workspace {
  private ptr = 0;
  private capacity = 0;
  private cursor = 0;
  private end = 0;
  private f32View = new Float32Array(0);
  private i32View = new Int32Array(0);

  constructor(private readonly exports: WasmExports) {}

  /** Bytes of wasm memory the workspace holds. */
  get bytes(): number {
    return this.capacity;
  }

  /** Starts a call needing `bytes` in total; grows the region if needed. */
  begin(bytes: number): void {
    if (bytes > this.capacity) this.grow(roundToPage(bytes));
    this.cursor = this.ptr;
    this.end = this.ptr + bytes;
  }

  private grow(size: number): void {
    const memory = this.exports.memory;
    if (this.capacity > 0 && this.ptr + this.capacity === memory.buffer.byteLength) {
      growOrThrow(memory, size - this.capacity, size); // in place: still the end of memory
    } else {
      // First use, or something else grew memory since: a new region (the old one is
      // abandoned; nothing in the package allocates after loading, so this is the first use).
      this.ptr = growOrThrow(memory, size, size);
    }
    this.capacity = size;
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
