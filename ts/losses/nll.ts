/** NLLLoss: exactly `torch.nn.functional.nll_loss` on log-probabilities, forward and backward fused. */
import type { NllArgs } from "../backend.js";
import { checkOptionNames, parseInteger, parseReduction, type Reduction } from "../options.js";
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

export interface NLLOptions extends CommonOptions {
  /** Per-class rescaling weight, length C. */
  weight?: WeightLike;
  /** Class index whose positions do not contribute. Default -100. */
  ignoreIndex?: number;
  /** 'none' | 'mean' | 'sum'. Default 'mean' (divides by Σ weight[target]). */
  reduction?: Reduction;
}

const OWNER = "NLLLoss";
const OPTION_NAMES = ["weight", "ignoreIndex", "reduction", "backend"] as const;

/** `loss = -weight[t]·x_t` on log-probabilities `x` (e.g. a log-softmax), `(N, C)`, `(N, C, d1..dK)` or `(C)`. */
export class NLLLoss extends LossBase {
  readonly weight?: Float32Array;
  readonly ignoreIndex: number;
  readonly reduction: Reduction;
  private readonly weightShape?: readonly number[];

  constructor(options: NLLOptions = {}) {
    checkOptionNames(OWNER, options, OPTION_NAMES);
    super(options.backend);
    if (options.weight !== undefined && options.weight !== null) {
      const w = parseWeight(options.weight, "weight");
      this.weight = w.data;
      this.weightShape = w.shape;
    }
    this.ignoreIndex = parseInteger(OWNER, "ignoreIndex", options.ignoreIndex, -100);
    this.reduction = parseReduction(options.reduction);
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
    targetKind(targetLike, input.shape, { owner: OWNER, allowProb: false });
    if (this.weight && (this.weightShape!.length !== 1 || this.weight.length !== layout.classes)) {
      throw new RangeError(
        `weight tensor should be defined either for all ${layout.classes} classes or no classes but got weight tensor of shape: ${formatShape(this.weightShape!)}`,
      );
    }
    const { target, weightSum: denominator } = parseIndexTarget(targetLike, input.shape, layout, this.ignoreIndex, this.weight);
    const n = positions(layout);
    const losses = this.reduction === "none" ? new Float32Array(n) : undefined;
    const args: NllArgs = { layout, input: input.data, target, weight: this.weight, losses };
    if (backward) {
      args.upstream = upstreamFor(OWNER, this.reduction, backward.gradOutput, n, denominator, positionShape(input.shape));
      args.grad = gradBuffer(OWNER, backward.gradInput, input.data.length, input.data, { gradOutput: backward.gradOutput });
    }
    const sum = this.kernels().nllLoss(args);
    return { loss: reduce(this.reduction, sum, denominator, losses), grad: args.grad };
  }
}

/** Functional form of [`NLLLoss`]: the loss only. */
export function nllLoss(input: Tensor, target: TargetLike, options?: NLLOptions): number | Float32Array {
  return new NLLLoss(options).forward(input, target);
}
