/**
 * fused-loss for Node.js: PyTorch-exact losses with forward and backward fused in one
 * WebAssembly SIMD sweep. The wasm builds load synchronously on first use.
 */
import { installProvider, registerJsBackend } from "./backend.js";
import { jsBackend } from "./js/index.js";
import { nodeProvider } from "./wasm/node-provider.js";

registerJsBackend(() => jsBackend);
installProvider(nodeProvider);

export * from "./api.js";
