/** The pure-JS backend: the fallback where WebAssembly is missing, and the benchmark's baseline. */
import type { Backend } from "../backend.js";
import { bceJs, bceWithLogitsJs, sigmoidFocalJs } from "./binary.js";
import { crossEntropyJs } from "./cross-entropy.js";
import { focalJs } from "./focal.js";
import { nllJs } from "./nll.js";

export const jsBackend: Backend = {
  name: "js",
  crossEntropy: crossEntropyJs,
  focal: focalJs,
  nllLoss: nllJs,
  bceWithLogits: bceWithLogitsJs,
  bce: bceJs,
  sigmoidFocal: sigmoidFocalJs,
};
