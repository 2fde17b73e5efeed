/**
 * FocalLoss: the softmax focal loss of Lin et al. as the widely copied
 * `FocalLoss(gamma, alpha, size_average)` module computes it, generalised (weight,
 * ignoreIndex, reductions, spatial inputs), forward and backward fused in the softmax sweep.
 */
import type { FocalArgs } from "../backend.js";
import { checkOptionNames, parseInteger, parseNumber, parseReduction, type Reduction } from "../options.js";
import { parseIndexTarget, targetKind } from "../targets.js";
import {
  classLayout,
  formatShape,
  parseTensor,
  parseWeight,
  positionShape,
  positions,
  type TargetLike,
  type Tensor,
  type WeightLike,
} from "../tensor.js";
import {
  LossBase,
  gradBuffer,
  reduce,
  upstreamFor,
  type BackwardOptions,
  type CommonOptions,
  type LossAndGrad,
} from "./common.js";

export type FocalGradient = "full" | "detached";

export interface FocalOptions extends CommonOptions {
  /** Focusing parameter, >= 0. Default 2; 0 is cross-entropy. */
  gamma?: number;
  /** A number `a` means `[a, 1 - a]` (two classes only: class 0 gets `a`); an array, one per
   * class. Multiplies each position's loss; never enters the 'mean' denominator. */
  alpha?: number | WeightLike | null;
  /** Per-class rescaling weight, length C; 'mean' then divides by Σ weight[target]. */
  weight?: WeightLike;
  /** Class index whose positions do not contribute. Default -100. */
  ignoreIndex?: number;
  /** 'none' | 'mean' | 'sum'. Default 'mean'. */
  reduction?: Reduction;
  /** The module's `size_average`: true is 'mean', false is 'sum' (not together with `reduction`). */
  sizeAverage?: boolean;
  /** 'full' (default): the true gradient. 'detached': p_t is a constant in backward, exactly
   * the widely copied module (`Variable(logpt.data.exp())`). */
  gradient?: FocalGradient;
}

const OWNER = "FocalLoss";
const OPTION_NAMES = ["gamma", "alpha", "weight", "ignoreIndex", "reduction", "sizeAverage", "gradient", "backend"] as const;

/** Checks a focusing parameter: a finite number >= 0. */
export function parseGamma(owner: string, value: unknown, fallback: number): number {
  const gamma = parseNumber(owner, "gamma", value, fallback);
  if (!(gamma >= 0 && gamma < Infinity)) throw new RangeError(`${owner}: gamma must be a finite number >= 0, got ${gamma}`);
  return gamma;
}

function perClassShapeError(name: string, classes: number, shape: readonly number[]): RangeError {
  return new RangeError(
    `${name} tensor should be defined either for all ${classes} classes or no classes but got ${name} tensor of shape: ${formatShape(shape)}`,
  );
}

/**
 * `loss = -alpha[t]·weight[t]·(1 - p_t)^γ·log p_t` with `p = softmax(x)` over the class axis,
 * inputs `(N, C)`, `(N, C, d1..dK)` or `(C)`, class-index targets. The gradient is finite for
 * every `γ >= 0` (closed form; see README, deviations).
 */
export class FocalLoss extends LossBase {
  readonly gamma: number;
  /** As given: a number (two classes), per-class values, or undefined. */
  readonly alpha?: number | Float32Array;
  readonly weight?: Float32Array;
  readonly ignoreIndex: number;
  readonly reduction: Reduction;
  readonly gradient: FocalGradient;
  private readonly alphaShape?: readonly number[];
  private readonly weightShape?: readonly number[];
  private readonly alphaPair?: Float32Array;

  constructor(options: FocalOptions = {}) {
    checkOptionNames(OWNER, options, OPTION_NAMES);
    super(options.backend);
    this.gamma = parseGamma(OWNER, options.gamma, 2);
    const alpha = options.alpha;
    if (typeof alpha === "number") {
      if (!Number.isFinite(alpha)) throw new RangeError(`${OWNER}: alpha must be finite, got ${alpha}`);
      this.alpha = alpha;
      this.alphaPair = Float32Array.of(alpha, 1 - alpha);
    } else if (alpha !== undefined && alpha !== null) {
      const a = parseWeight(alpha, "alpha");
      this.alpha = a.data;
      this.alphaShape = a.shape;
    }
    if (options.weight !== undefined && options.weight !== null) {
      const w = parseWeight(options.weight, "weight");
      this.weight = w.data;
      this.weightShape = w.shape;
    }
    this.ignoreIndex = parseInteger(OWNER, "ignoreIndex", options.ignoreIndex, -100);
    if (options.sizeAverage !== undefined) {
      if (options.reduction !== undefined) {
        throw new TypeError(`${OWNER}: pass either sizeAverage or reduction, not both (sizeAverage true is reduction 'mean', false is 'sum')`);
      }
      if (typeof options.sizeAverage !== "boolean") {
        throw new TypeError(`${OWNER}: sizeAverage must be a boolean, got ${typeof options.sizeAverage}`);
      }
      this.reduction = options.sizeAverage ? "mean" : "sum";
    } else {
      this.reduction = parseReduction(options.reduction);
    }
    const gradient = options.gradient ?? "full";
    if (gradient !== "full" && gradient !== "detached") {
      throw new RangeError(`${OWNER}: gradient must be 'full' or 'detached', got ${JSON.stringify(gradient)}`);
    }
    this.gradient = gradient;
  }

  /** The loss: a number for 'mean'/'sum', a Float32Array (one per position) for 'none'. */
  forward(input: Tensor, target: TargetLike): number | Float32Array {
    return this.run(input, target, undefined).loss;
  }

  /** Loss and gradient with respect to `input.data`, in one fused call. */
  forwardBackward(input: Tensor, target: TargetLike, options: BackwardOptions = {}): LossAndGrad {
    checkOptionNames(`${OWNER}.forwardBackward`, options, ["gradOutput", "gradInput"]);
    return this.run(input, target, options) as LossAndGrad;
  }

  /** Per-class alpha for `classes` classes, checked. */
  private alphaFor(classes: number): Float32Array | undefined {
    if (this.alphaPair) {
      if (classes !== 2) {
        throw new RangeError(
          `${OWNER}: alpha = ${this.alpha} (a number) means [alpha, 1 - alpha] and needs exactly 2 classes, but the input has ${classes}; pass one alpha per class instead`,
        );
      }
      return this.alphaPair;
    }
    const alpha = this.alpha as Float32Array | undefined;
    if (alpha && (this.alphaShape!.length !== 1 || alpha.length !== classes)) throw perClassShapeError("alpha", classes, this.alphaShape!);
    return alpha;
  }

  private run(inputLike: Tensor, targetLike: TargetLike, backward: BackwardOptions | undefined): { loss: number | Float32Array; grad?: Float32Array } {
    const input = parseTensor(inputLike, "input");
    const layout = classLayout(input.shape);
    targetKind(targetLike, input.shape, { owner: OWNER, allowProb: false });
    if (this.weight && (this.weightShape!.length !== 1 || this.weight.length !== layout.classes)) {
      throw perClassShapeError("weight", layout.classes, this.weightShape!);
    }
    const alpha = this.alphaFor(layout.classes);
    // 'mean' divides by Σ weight[t] over the positions not ignored (their count without weight).
    const { target, weightSum: denominator } = parseIndexTarget(targetLike, input.shape, layout, this.ignoreIndex, this.weight);
    const n = positions(layout);
    const losses = this.reduction === "none" ? new Float32Array(n) : undefined;
    const args: FocalArgs = {
      layout,
      input: input.data,
      target,
      gamma: this.gamma,
      alpha,
      weight: this.weight,
      detached: this.gradient === "detached",
      losses,
    };
    if (backward) {
      args.upstream = upstreamFor(OWNER, this.reduction, backward.gradOutput, n, denominator, positionShape(input.shape));
      args.grad = gradBuffer(OWNER, backward.gradInput, input.data.length, input.data, { gradOutput: backward.gradOutput });
    }
    const sum = this.kernels().focal(args);
    return { loss: reduce(this.reduction, sum, denominator, losses), grad: args.grad };
  }
}

/** Functional form of [`FocalLoss`]: the loss only. */
export function focalLoss(input: Tensor, target: TargetLike, options?: FocalOptions): number | Float32Array {
  return new FocalLoss(options).forward(input, target);
}
