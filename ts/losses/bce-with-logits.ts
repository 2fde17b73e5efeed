/** BCEWithLogitsLoss: exactly `torch.nn.functional.binary_cross_entropy_with_logits`, fused. */
import type { Backend, BinaryIO } from "../backend.js";
import { checkOptionNames, parseReduction, type Reduction } from "../options.js";
import type { Tensor, WeightLike } from "../tensor.js";
import type { CommonOptions } from "./common.js";
import { BroadcastWeight, ElementwiseLoss, type ElementTargetLike } from "./elementwise.js";

export interface BCEWithLogitsOptions extends CommonOptions {
  /** Rescaling weight, broadcast against the input as PyTorch does: a 1-D array applies along
   * the last axis, `{ data, shape }` broadcasts numpy-style (e.g. shape `[N, 1]`, `[C, 1, 1]`). */
  weight?: WeightLike;
  /** Weight of the positive term, broadcast the same way (usually one per class, last axis). */
  posWeight?: WeightLike;
  /** 'none' | 'mean' | 'sum'. Default 'mean'. */
  reduction?: Reduction;
}

const OWNER = "BCEWithLogitsLoss";
const OPTION_NAMES = ["weight", "posWeight", "reduction", "backend"] as const;

/**
 * `loss = -w·[pw·t·log σ(x) + (1 - t)·log σ(-x)]` on logits, any shape, targets in [0, 1]
 * (soft targets too), computed without overflow or cancellation for any logit.
 */
export class BCEWithLogitsLoss extends ElementwiseLoss {
  readonly reduction: Reduction;
  protected readonly owner = OWNER;
  private readonly weightOption?: BroadcastWeight;
  private readonly posWeightOption?: BroadcastWeight;

  constructor(options: BCEWithLogitsOptions = {}) {
    checkOptionNames(OWNER, options, OPTION_NAMES);
    super(options.backend);
    if (options.weight != null) this.weightOption = new BroadcastWeight(options.weight, "weight");
    if (options.posWeight != null) this.posWeightOption = new BroadcastWeight(options.posWeight, "posWeight");
    this.reduction = parseReduction(options.reduction);
  }

  /** The weight as given (a copy), if any. */
  get weight(): Float32Array | undefined {
    return this.weightOption?.data;
  }

  get posWeight(): Float32Array | undefined {
    return this.posWeightOption?.data;
  }

  protected sizeMismatch(target: string, input: string): string {
    return `Target size (${target}) must be the same as input size (${input})`;
  }

  protected kernel(backend: Backend, io: BinaryIO, shape: readonly number[]): number {
    // PyTorch: `(pos_weight - 1).mul(target)` (a: pos_weight), then `loss.mul_(weight)` (a: the
    // loss), in that order: with both invalid, pos_weight's error is the one raised.
    const posWeight = this.posWeightOption?.against(shape, "weight, input");
    const weight = this.weightOption?.against(shape, "input, weight");
    return backend.bceWithLogits({ ...io, weight, posWeight });
  }
}

/** Functional form of [`BCEWithLogitsLoss`]: the loss only. */
export function binaryCrossEntropyWithLogits(input: Tensor, target: ElementTargetLike, options?: BCEWithLogitsOptions): number | Float32Array {
  return new BCEWithLogitsLoss(options).forward(input, target);
}
