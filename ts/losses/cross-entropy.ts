/** CrossEntropyLoss: exactly `torch.nn.functional.cross_entropy`, forward and backward fused. */
import type { CrossEntropyArgs, ParsedTargetArg } from "../backend.js";
import { checkOptionNames, parseInteger, parseNumber, parseReduction, type Reduction } from "../options.js";
import { parseIndexTarget, parseProbTarget, targetKind } from "../targets.js";
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

export interface CrossEntropyOptions extends CommonOptions {
  /** Per-class rescaling weight, length C. */
  weight?: WeightLike;
  /** Class index whose positions do not contribute (index targets only). Default -100. */
  ignoreIndex?: number;
  /** 'none' | 'mean' | 'sum'. Default 'mean'. */
  reduction?: Reduction;
  /** Amount of label smoothing in [0, 1]. Default 0. */
  labelSmoothing?: number;
}

const OWNER = "CrossEntropyLoss";
const OPTION_NAMES = ["weight", "ignoreIndex", "reduction", "labelSmoothing", "backend"] as const;

export class CrossEntropyLoss extends LossBase {
  readonly weight?: Float32Array;
  readonly ignoreIndex: number;
  readonly reduction: Reduction;
  readonly labelSmoothing: number;
  private readonly weightShape?: readonly number[];

  constructor(options: CrossEntropyOptions = {}) {
    checkOptionNames(OWNER, options, OPTION_NAMES);
    super(options.backend);
    if (options.weight !== undefined && options.weight !== null) {
      const w = parseWeight(options.weight, "weight");
      this.weight = w.data;
      this.weightShape = w.shape;
    }
    this.ignoreIndex = parseInteger(OWNER, "ignoreIndex", options.ignoreIndex, -100);
    this.reduction = parseReduction(options.reduction);
    this.labelSmoothing = parseNumber(OWNER, "labelSmoothing", options.labelSmoothing, 0);
    if (!(this.labelSmoothing >= 0 && this.labelSmoothing <= 1)) {
      throw new RangeError(`label_smoothing must be between 0.0 and 1.0. Got: ${this.labelSmoothing}`);
    }
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

  private run(inputLike: Tensor, targetLike: TargetLike, backward: BackwardOptions | undefined): { loss: number | Float32Array; grad?: Float32Array } {
    const input = parseTensor(inputLike, "input");
    const layout = classLayout(input.shape);
    const kind = targetKind(targetLike, input.shape, { owner: OWNER, allowProb: true });
    if (this.weight && (this.weightShape!.length !== 1 || this.weight.length !== layout.classes)) {
      throw new RangeError(
        `${kind === "prob" ? "cross_entropy: " : ""}weight tensor should be defined either for all ${layout.classes} classes or no classes but got weight tensor of shape: ${formatShape(this.weightShape!)}`,
      );
    }
    let target: ParsedTargetArg;
    let denominator: number;
    if (kind === "prob") {
      if (this.ignoreIndex >= 0) throw new RangeError("ignore_index is not supported for floating point target");
      target = parseProbTarget(targetLike, input.data.length, OWNER);
      // ATen divides by numel / C, and returns NaN for an empty input (C = 0 included).
      denominator = input.data.length === 0 ? NaN : positions(layout);
    } else {
      const parsed = parseIndexTarget(targetLike, input.shape, layout, this.ignoreIndex, this.weight);
      target = parsed.target;
      denominator = parsed.weightSum;
    }
    const n = positions(layout);
    const losses = this.reduction === "none" ? new Float32Array(n) : undefined;
    const args: CrossEntropyArgs = { layout, input: input.data, target, weight: this.weight, labelSmoothing: this.labelSmoothing, losses };
    if (backward) {
      args.upstream = upstreamFor(OWNER, this.reduction, backward.gradOutput, n, denominator, positionShape(input.shape));
      const others = { target: target.kind === "prob" ? target.probs : undefined, gradOutput: backward.gradOutput };
      args.grad = gradBuffer(OWNER, backward.gradInput, input.data.length, input.data, others);
    }
    const sum = layout.classes === 0 ? this.noClasses(kind, losses) : this.kernels().crossEntropy(args);
    // With no target weight at all, PyTorch's 'mean' is NaN (its nll term is 0/0) even when
    // the smoothing term is not 0.
    const reducedSum = this.reduction === "mean" && kind === "index" && denominator === 0 ? NaN : sum;
    return { loss: reduce(this.reduction, reducedSum, denominator, losses), grad: args.grad };
  }

  /**
   * Zero classes: nothing for a kernel to compute (every index target is ignored, the gradient
   * is empty). PyTorch's values: 0 per position, except with label smoothing on index targets,
   * where its smoothing term is `0·(ε/C) = 0·∞ = NaN` (the sum too, even of no positions).
   */
  private noClasses(kind: "index" | "prob", losses: Float32Array | undefined): number {
    const value = kind === "index" && this.labelSmoothing > 0 ? NaN : 0;
    losses?.fill(value);
    return value;
  }
}

/** Functional form of [`CrossEntropyLoss`]: the loss only. */
export function crossEntropy(input: Tensor, target: TargetLike, options?: CrossEntropyOptions): number | Float32Array {
  return new CrossEntropyLoss(options).forward(input, target);
}
