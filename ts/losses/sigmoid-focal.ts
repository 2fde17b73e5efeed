/** SigmoidFocalLoss: exactly `torchvision.ops.sigmoid_focal_loss`, forward and backward fused. */
import type { Backend, BinaryIO } from "../backend.js";
import { checkOptionNames, parseNumber, type Reduction } from "../options.js";
import type { Tensor } from "../tensor.js";
import type { CommonOptions } from "./common.js";
import { ElementwiseLoss, type ElementTargetLike } from "./elementwise.js";
import { parseGamma } from "./focal.js";

export interface SigmoidFocalOptions extends CommonOptions {
  /** Weight of the positive class in [0, 1]; `null` or a negative number disables it. Default 0.25. */
  alpha?: number | null;
  /** Focusing parameter, >= 0. Default 2. */
  gamma?: number;
  /** 'none' | 'mean' | 'sum'. Default 'none' (as torchvision). */
  reduction?: Reduction;
}

const OWNER = "SigmoidFocalLoss";
const OPTION_NAMES = ["alpha", "gamma", "reduction", "backend"] as const;

/** torchvision's check (since 0.15; 0.14 silently returned the 'none' loss), its wording. */
function parseFocalReduction(value: unknown): Reduction {
  if (value === undefined) return "none";
  if (value === "none" || value === "mean" || value === "sum") return value;
  throw new RangeError(`Invalid Value for arg 'reduction': '${String(value)}' \n Supported reduction modes: 'none', 'mean', 'sum'`);
}

/**
 * `loss = α_t·(1 - p_t)^γ·BCEWithLogits(x, t)` with `p = σ(x)`, `p_t = p·t + (1 - p)·(1 - t)`,
 * `α_t = α·t + (1 - α)·(1 - t)`, any shape, targets in [0, 1] (soft targets too). The gradient
 * is the true one, in closed form: finite for every `γ >= 0` (see README, deviations).
 */
export class SigmoidFocalLoss extends ElementwiseLoss {
  /** `α`, or null when the α weighting is off. */
  readonly alpha: number | null;
  readonly gamma: number;
  readonly reduction: Reduction;
  protected readonly owner = OWNER;

  constructor(options: SigmoidFocalOptions = {}) {
    checkOptionNames(OWNER, options, OPTION_NAMES);
    super(options.backend);
    const alpha = options.alpha === null ? null : parseNumber(OWNER, "alpha", options.alpha, 0.25);
    if (alpha !== null && !Number.isFinite(alpha)) throw new RangeError(`${OWNER}: alpha must be finite, got ${alpha}`);
    this.alpha = alpha === null || alpha < 0 ? null : alpha;
    this.gamma = parseGamma(OWNER, options.gamma, 2);
    this.reduction = parseFocalReduction(options.reduction);
  }

  protected sizeMismatch(target: string, input: string): string {
    return `Target size (${target}) must be the same as input size (${input})`;
  }

  protected kernel(backend: Backend, io: BinaryIO): number {
    return backend.sigmoidFocal({ ...io, alpha: this.alpha ?? -1, gamma: this.gamma });
  }
}

/** Functional form of [`SigmoidFocalLoss`] (torchvision's `sigmoid_focal_loss`): the loss only. */
export function sigmoidFocalLoss(input: Tensor, target: ElementTargetLike, options?: SigmoidFocalOptions): number | Float32Array {
  return new SigmoidFocalLoss(options).forward(input, target);
}
