/** The pure-JS backend: the fallback where WebAssembly is missing, and the benchmark's baseline. */
import type { Backend } from "../backend.js";
import { crossEntropyJs } from "./cross-entropy.js";

export const jsBackend: Backend = {
  name: "js",
  crossEntropy: crossEntropyJs,
};
