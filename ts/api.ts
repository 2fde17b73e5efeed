/** The public API shared by every entry point. */
export { CrossEntropyLoss, crossEntropy, type CrossEntropyOptions } from "./losses/cross-entropy.js";
export { FocalLoss, focalLoss, type FocalOptions, type FocalGradient } from "./losses/focal.js";
export { SigmoidFocalLoss, sigmoidFocalLoss, type SigmoidFocalOptions } from "./losses/sigmoid-focal.js";
export { BCEWithLogitsLoss, binaryCrossEntropyWithLogits, type BCEWithLogitsOptions } from "./losses/bce-with-logits.js";
export { BCELoss, binaryCrossEntropy, type BCEOptions } from "./losses/bce.js";
export { NLLLoss, nllLoss, type NLLOptions } from "./losses/nll.js";
export type { ElementTargetLike } from "./losses/elementwise.js";
export type { BackwardOptions, LossAndGrad, CommonOptions } from "./losses/common.js";
export type { Reduction } from "./options.js";
export type { Tensor, TargetLike, TargetTensor, IndexArray, WeightLike } from "./tensor.js";
export { getBackend, setBackend, BackendUnavailableError, type BackendName } from "./backend.js";
export { configure, getConfig, DEFAULT_WORKSPACE_BYTES, type Config } from "./config.js";
export { allocTensor, AllocatedTensor, type AllocTensorOptions } from "./alloc.js";
export { memoryStats, type WasmMemoryStats } from "./wasm/memories.js";
