/**
 * Backends compute the kernels; the loss classes validate and reduce. Three exist: the
 * SIMD128 wasm build, the baseline wasm build, and pure JavaScript. All implement the same
 * kernel interface over typed arrays, with the same semantics.
 */
import { jsBackend } from "./js/index.js";
import { provider } from "./platform.js";
import type { Layout } from "./tensor.js";

export type BackendName = "simd" | "scalar" | "js";
export const BACKEND_NAMES: readonly BackendName[] = ["simd", "scalar", "js"];

/** The value that marks an ignored position in the Int32 targets a kernel receives. */
export const IGNORED = -1;

/** Index targets already validated and converted (ignored positions hold [`IGNORED`]). */
export interface IndexTargetArg {
  kind: "index";
  classes: Int32Array;
}
/** Class probabilities in the input's layout. */
export interface ProbTargetArg {
  kind: "prob";
  probs: Float32Array;
}

export type ParsedTargetArg = IndexTargetArg | ProbTargetArg;

/** Arguments every kernel shares. */
export interface KernelIO {
  layout: Layout;
  /** The input; never written unless `grad` is this same array. */
  input: Float32Array;
  /** Upstream gradient per position: a number for all, an array for each, undefined for none. */
  upstream?: number | Float32Array;
  /** Receives each position's loss when given. */
  losses?: Float32Array;
  /** Receives the gradient when given (and `upstream` is set); may be `input` itself. */
  grad?: Float32Array;
}

export interface CrossEntropyArgs extends KernelIO {
  target: IndexTargetArg | ProbTargetArg;
  weight?: Float32Array;
  labelSmoothing: number;
}

export interface FocalArgs extends KernelIO {
  target: IndexTargetArg;
  /** Focusing parameter, >= 0. */
  gamma: number;
  /** Per-class alpha (length C); absent: 1. */
  alpha?: Float32Array;
  /** Per-class rescaling weight (length C); absent: 1. */
  weight?: Float32Array;
  /** Treat p_t as a constant in backward (the widely copied module) instead of the true gradient. */
  detached: boolean;
}

export interface NllArgs extends KernelIO {
  target: IndexTargetArg;
  weight?: Float32Array;
}

/**
 * A weight broadcast against an element-wise input: element `i` gets
 * `values[Math.floor(i / repeat) % values.length]` (see the crate's `binary::Broadcast`).
 */
export interface BroadcastArg {
  values: Float32Array;
  repeat: number;
}

/** Element-wise losses: `layout` is `(n, 1, 1)`, one position per element. */
export interface BinaryIO extends KernelIO {
  /** Targets, one per element. */
  target: Float32Array;
}

export interface BceWithLogitsArgs extends BinaryIO {
  weight?: BroadcastArg;
  posWeight?: BroadcastArg;
}

export interface BceArgs extends BinaryIO {
  weight?: BroadcastArg;
}

export interface SigmoidFocalArgs extends BinaryIO {
  /** Alpha weighting; negative: none (torchvision's convention). */
  alpha: number;
  gamma: number;
}

export interface Backend {
  readonly name: BackendName;
  /** Runs the kernel; returns the sum of the positions' losses (float64, position order). */
  crossEntropy(args: CrossEntropyArgs): number;
  /** Softmax focal loss; as `crossEntropy`. */
  focal(args: FocalArgs): number;
  /** NLL on log-probabilities; as `crossEntropy`. */
  nllLoss(args: NllArgs): number;
  /** BCE with logits, element-wise; returns the sum of the elements' losses. */
  bceWithLogits(args: BceWithLogitsArgs): number;
  /** BCE on probabilities (inputs already checked to lie in [0, 1]). */
  bce(args: BceArgs): number;
  /** torchvision's sigmoid focal loss, element-wise. */
  sigmoidFocal(args: SigmoidFocalArgs): number;
}

/** Thrown when a backend cannot be had here (no WebAssembly, no SIMD, not initialised). */
export class BackendUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BackendUnavailableError";
  }
}

/**
 * Where wasm backends come from: Node loads them synchronously on first use, browsers in
 * `init()`. Each entry point's provider is ts/platform.ts (substituted per build).
 */
export interface BackendProvider {
  /** Returns the backend, loading it if this platform can now; throws BackendUnavailableError
   * when it cannot be had, and a plain Error when `init()` has not loaded it yet. */
  get(name: BackendName): Backend;
  /** Whether this engine validates wasm SIMD128. */
  simdSupported(): boolean;
  /** Loads `name` now where loading is synchronous; elsewhere only checks that this engine can run it. */
  prepare(name: BackendName): void;
}

let forced: BackendName | undefined;

function parseBackendName(value: unknown, source: string): BackendName {
  if (value === "simd" || value === "scalar" || value === "js") return value;
  throw new RangeError(`${source} must be 'simd', 'scalar' or 'js', got ${JSON.stringify(value)}`);
}

function envBackend(): BackendName | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const value = env?.FUSED_LOSS_BACKEND;
  if (value === undefined || value === "" || value === "auto") return undefined;
  return parseBackendName(value, "FUSED_LOSS_BACKEND");
}

/** Forces a backend for every loss that does not choose its own (`undefined`: automatic). */
export function setBackend(name: BackendName | "auto" | undefined): void {
  const next = name === undefined || name === "auto" ? undefined : parseBackendName(name, "setBackend()");
  if (next) provider.prepare(next); // fail now, not at the first loss
  forced = next;
}

/** The backend forced by `setBackend` or FUSED_LOSS_BACKEND, if any. */
export function requestedBackend(): BackendName | undefined {
  return forced ?? envBackend();
}

/** The automatic choice: SIMD when the engine validates it, else the scalar build, else JS. */
function automatic(): Backend {
  const order: BackendName[] = provider.simdSupported() ? ["simd", "scalar"] : ["scalar"];
  for (const name of order) {
    try {
      return provider.get(name);
    } catch (e) {
      if (!(e instanceof BackendUnavailableError)) throw e;
    }
  }
  return jsBackend;
}

/** Returns the backend for `name` (or the forced/automatic choice), loading it if needed. */
export function resolveBackend(name?: BackendName): Backend {
  const chosen = name ?? requestedBackend();
  if (chosen === undefined) return automatic();
  if (chosen === "js") return jsBackend;
  return provider.get(chosen);
}

/** The name of the backend a loss without a `backend` option uses now. */
export function getBackend(): BackendName {
  return resolveBackend().name;
}

export function checkBackendOption(value: unknown): BackendName | undefined {
  return value === undefined ? undefined : parseBackendName(value, "backend");
}
