import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { isMainThread } from "node:worker_threads";
import type { Plugin } from "esbuild";
import { defineConfig, type Options } from "tsup";

const VARIANTS = ["simd", "scalar"] as const;
const wasmPath = (variant: string): string => `build/wasm/${variant}/fused_loss_bg.wasm`;

/** The wasm binaries ship beside the bundles, named by variant. */
function copyWasm(): void {
  mkdirSync("dist", { recursive: true });
  for (const variant of VARIANTS) copyFileSync(wasmPath(variant), `dist/fused_loss_${variant}.wasm`);
}

/**
 * Builds ts/index.ts for a platform other than Node: ts/platform.ts (Node's provider) is
 * replaced by ts/wasm/<platform>-provider.ts, and the inline provider's
 * "fused-loss:embedded-wasm" module is generated from the two binaries.
 */
function platformPlugin(platform: "browser" | "inline"): Plugin {
  const nodePlatform = resolve("ts/platform.js");
  return {
    name: "fused-loss-platform",
    setup(build) {
      build.onResolve({ filter: /\/platform\.js$/ }, (args) =>
        resolve(args.resolveDir, args.path) === nodePlatform ? { path: resolve(`ts/wasm/${platform}-provider.ts`) } : undefined,
      );
      build.onResolve({ filter: /^fused-loss:embedded-wasm$/ }, (args) => ({ path: args.path, namespace: "embedded-wasm" }));
      build.onLoad({ filter: /.*/, namespace: "embedded-wasm" }, () => ({
        contents: VARIANTS.map((v) => `export const ${v} = ${JSON.stringify(readFileSync(wasmPath(v)).toString("base64"))};`).join("\n"),
        loader: "js",
      }));
    },
  };
}

/** A browser or neutral bundle must not reach Node's provider (node:fs would break bundlers). */
function checkNoNodeBuiltins(files: string[]): void {
  for (const file of files) {
    const code = readFileSync(file, "utf8");
    if (/\bnode:|readFileSync|fileURLToPath/.test(code)) throw new Error(`tsup: ${file} contains Node-only code`);
  }
}

// The configs build concurrently, so none of them may clean dist/ itself. (tsup loads this
// file again in its declaration worker, which must not clean what the others wrote.)
if (isMainThread) rmSync("dist", { recursive: true, force: true });

const common: Options = {
  target: "es2022",
  clean: false,
  splitting: false,
  treeshake: true,
};

export default defineConfig([
  {
    ...common,
    entry: { index: "ts/index.ts", tfjs: "ts/tfjs.ts" },
    // The tfjs adapter uses the main entry, not a bundled copy of it (one backend state).
    external: ["fused-loss"],
    format: ["esm", "cjs"],
    platform: "node",
    // One set of declarations for every entry: the API is the same everywhere.
    dts: true,
    shims: true,
    onSuccess: async () => copyWasm(),
  },
  {
    ...common,
    entry: { browser: "ts/index.ts" },
    format: ["esm"],
    platform: "browser",
    esbuildPlugins: [platformPlugin("browser")],
    onSuccess: async () => checkNoNodeBuiltins(["dist/browser.js"]),
  },
  {
    ...common,
    entry: { inline: "ts/index.ts" },
    format: ["esm", "cjs"],
    platform: "neutral",
    esbuildPlugins: [platformPlugin("inline")],
    onSuccess: async () => checkNoNodeBuiltins(["dist/inline.js", "dist/inline.cjs"]),
  },
]);
