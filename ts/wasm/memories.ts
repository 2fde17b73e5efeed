/**
 * Which loaded wasm backend owns a view's memory. A leaf module (no imports), so that every
 * backend, the JS one included, can recognise a tensor allocated by `allocTensor` in another
 * backend's memory and refuse it with a clear error instead of silently copying.
 */

const owners: { memory: WebAssembly.Memory; name: string }[] = [];

/** Called once per loaded wasm instance. */
export function registerWasmMemory(memory: WebAssembly.Memory, name: string): void {
  owners.push({ memory, name });
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
