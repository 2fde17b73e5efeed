/** Package-wide settings (`configure()`), read by the wasm backends at each call. */

import { checkOptionNames } from "./options.js";

/** Default cap of the wasm workspace: inputs whose chunk would need more are processed in chunks. */
export const DEFAULT_WORKSPACE_BYTES = 32 << 20;

export interface Config {
  /**
   * Most bytes of wasm memory a wasm backend takes for its working buffer. Copied inputs are
   * processed in chunks of at most 256 KiB or this cap, whichever is smaller (whole samples,
   * or spatial ranges of one sample); only a position
   * (one row of C logits and its target) larger than the cap, or a cap smaller than 8
   * positions (then 5 positions), makes the buffer exceed it, and wasm memory never shrinks.
   * Lowering the cap does not give memory back; it bounds what later calls take. Results do
   * not depend on it (bit-identical for any cap). Default 32 MiB.
   */
  workspaceBytes: number;
}

const config: Config = { workspaceBytes: DEFAULT_WORKSPACE_BYTES };

/** The settings now (a copy). */
export function getConfig(): Config {
  return { ...config };
}

/** Changes settings for every loss; returns the settings now. Unknown names are rejected. */
export function configure(options: Partial<Config>): Config {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`configure() takes an object, got ${options === null ? "null" : typeof options}`);
  }
  checkOptionNames("configure()", options, ["workspaceBytes"]);
  const bytes = options.workspaceBytes;
  if (bytes !== undefined) {
    // Any positive size works: a tiny cap only means small chunks (slower, same results).
    if (typeof bytes !== "number" || !Number.isSafeInteger(bytes) || bytes < 1) {
      throw new RangeError(`configure(): workspaceBytes must be a positive integer (bytes), got ${String(bytes)}`);
    }
    config.workspaceBytes = bytes;
  }
  return getConfig();
}

/** The cap the wasm backends read on every call. */
export function workspaceBytes(): number {
  return config.workspaceBytes;
}
