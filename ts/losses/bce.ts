/** BCELoss: exactly `torch.nn.functional.binary_cross_entropy` on probabilities, fused. */
import type { Backend, BinaryIO } from "../backend.js";
import { checkOptionNames, parseReduction, type Reduction } from "../options.js";
import type { Tensor, WeightLike } from "../tensor.js";
import type { CommonOptions } from "./common.js";
import { BroadcastWeight, ElementwiseLoss, type ElementTargetLike } from "./elementwise.js";

export interface BCEOptions extends CommonOptions {
  /** Rescaling weight, broadcast against the input as PyTorch does (see BCEWithLogitsLoss). */
  weight?: WeightLike;
  /** 'none' | 'mean' | 'sum'. Default 'mean'. */
  reduction?: Reduction;
}

const OWNER = "BCELoss";
const OPTION_NAMES = ["weight", "reduction", "backend"] as const;

/**
 * `loss = -w·[t·log x + (1 - t)·log(1 - x)]` on probabilities `x` in [0, 1], each log clamped
 * at -100 and the gradient `w·(x - t) / max(x·(1 - x), 1e-12)`, as PyTorch computes them.
 */
export class BCELoss extends ElementwiseLoss {
  readonly reduction: Reduction;
  protected readonly owner = OWNER;
  private readonly weightOption?: BroadcastWeight;

  constructor(options: BCEOptions = {}) {
    checkOptionNames(OWNER, options, OPTION_NAMES);
    super(options.backend);
    if (options.weight != null) this.weightOption = new BroadcastWeight(options.weight, "weight");
    this.reduction = parseReduction(options.reduction);
  }

  get weight(): Float32Array | undefined {
    return this.weightOption?.data;
  }

  protected sizeMismatch(target: string, input: string): string {
    return `Using a target size (${target}) that is different to the input size (${input}) is deprecated. Please ensure they have the same size.`;
  }

  protected override checkInput(x: Float32Array): void {
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (!(v >= 0 && v <= 1)) throw new RangeError("all elements of input should be between 0 and 1");
    }
  }

  protected kernel(backend: Backend, io: BinaryIO, shape: readonly number[]): number {
    // PyTorch: `_infer_size(target.size(), weight.size())` (a: the target, input-shaped).
    return backend.bce({ ...io, weight: this.weightOption?.against(shape, "input, weight") });
  }
}

/** Functional form of [`BCELoss`]: the loss only. */
export function binaryCrossEntropy(input: Tensor, target: ElementTargetLike, options?: BCEOptions): number | Float32Array {
  return new BCELoss(options).forward(input, target);
}
