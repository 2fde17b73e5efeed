/**
 * Which loaded wasm backend owns a view's memory. A leaf module (no imports), so that every
 * backend, the JS one included, can recognise a tensor allocated by `allocTensor` in another
 * backend's memory and refuse it with a clear error instead of silently copying.
 */

/** What one loaded wasm backend holds (see `memoryStats`). */
export interface WasmMemoryStats {
  /** 'simd' or 'scalar'. */
  backend: string;
  /** Size of the backend's wasm memory: it only grows, never shrinks. */
  memoryBytes: number;
  /** The reused workspace the copying calls go through (bounded by `configure({ workspaceBytes })`). */
  workspaceBytes: number;
  /** Tensors from `allocTensor` not yet freed, and their bytes. */
  tensors: number;
  tensorBytes: number;
}

interface Owner {
  memory: WebAssembly.Memory;
  name: string;
  usage: () => { workspaceBytes: number; tensors: number; tensorBytes: number };
}

const owners: Owner[] = [];

/** Called once per loaded wasm instance. */
export function registerWasmMemory(memory: WebAssembly.Memory, name: string, usage: Owner["usage"]): void {
  owners.push({ memory, name, usage });
}

/**
 * The wasm memory of every backend loaded so far (none before the first wasm call in Node or
 * `init()` in browsers): to watch a long training run, or check the documented cap.
 */
export function memoryStats(): WasmMemoryStats[] {
  return owners.map((o) => ({ backend: o.name, memoryBytes: o.memory.buffer.byteLength, ...o.usage() }));
}

/** The backend whose wasm memory `view` lives in, if any. */
export function wasmMemoryOwner(view: ArrayBufferView): string | undefined {
  for (const o of owners) if (view.buffer === o.memory.buffer) return o.name;
  return undefined;
}

/** The error for a tensor of backend `owner` given to a loss running on backend `running`. */
export function foreignTensorError(what: string, owner: string, running: string): TypeError {
  return new TypeError(
    `fused-loss: ${what} lives in the '${owner}' backend's wasm memory (allocTensor(shape, { backend: '${owner}' })) but this loss runs on the '${running}' backend; use the same backend for both, or pass a copy (${what}.slice())`,
  );
}
