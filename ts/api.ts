/** The public API shared by every entry point. */
export { CrossEntropyLoss, crossEntropy, type CrossEntropyOptions } from "./losses/cross-entropy.js";
export type { BackwardOptions, LossAndGrad, CommonOptions } from "./losses/common.js";
export type { Reduction } from "./options.js";
export type { Tensor, TargetLike, TargetTensor, IndexArray, WeightLike } from "./tensor.js";
export { getBackend, setBackend, BackendUnavailableError, type BackendName } from "./backend.js";
export { configure, getConfig, DEFAULT_WORKSPACE_BYTES, type Config } from "./config.js";
