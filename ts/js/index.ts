/** The pure-JS backend: the fallback where WebAssembly is missing, and the benchmark's baseline. */
import type { Backend, KernelIO } from "../backend.js";
import { foreignTensorError, wasmMemoryOwner } from "../wasm/memories.js";
import { bceJs, bceWithLogitsJs, sigmoidFocalJs } from "./binary.js";
import { crossEntropyJs } from "./cross-entropy.js";
import { focalJs } from "./focal.js";
import { nllJs } from "./nll.js";

function refuseWasm(view: unknown, what: string): void {
  if (!ArrayBuffer.isView(view)) return;
  const owner = wasmMemoryOwner(view);
  if (owner !== undefined) throw foreignTensorError(what, owner, "js");
}

/** Tensors allocated in a wasm backend's memory belong to that backend (see `allocTensor`). */
function refuseWasmTensors(args: KernelIO & { target?: unknown }): void {
  refuseWasm(args.input, "input.data");
  refuseWasm(args.grad, "gradInput");
  refuseWasm(args.upstream, "gradOutput");
  const t = args.target as { probs?: unknown } | undefined;
  refuseWasm(t && typeof t === "object" && "probs" in t ? t.probs : t, "target");
}

export const jsBackend: Backend = {
  name: "js",
  crossEntropy: (args) => (refuseWasmTensors(args), crossEntropyJs(args)),
  focal: (args) => (refuseWasmTensors(args), focalJs(args)),
  nllLoss: (args) => (refuseWasmTensors(args), nllJs(args)),
  bceWithLogits: (args) => (refuseWasmTensors(args), bceWithLogitsJs(args)),
  bce: (args) => (refuseWasmTensors(args), bceJs(args)),
  sigmoidFocal: (args) => (refuseWasmTensors(args), sigmoidFocalJs(args)),
};
