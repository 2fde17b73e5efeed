import { copyFileSync, mkdirSync } from "node:fs";
import { defineConfig } from "tsup";

/** The wasm binaries ship beside the bundles, named by variant. */
function copyWasm(): void {
  mkdirSync("dist", { recursive: true });
  for (const variant of ["simd", "scalar"]) {
    copyFileSync(`build/wasm/${variant}/fused_loss_bg.wasm`, `dist/fused_loss_${variant}.wasm`);
  }
}

export default defineConfig({
  entry: { index: "ts/index.ts", tfjs: "ts/tfjs.ts" },
  // The tfjs adapter uses the main entry, not a bundled copy of it (one backend state).
  external: ["fused-loss"],
  format: ["esm", "cjs"],
  platform: "node",
  target: "es2022",
  dts: true,
  shims: true,
  clean: true,
  splitting: false,
  treeshake: true,
  onSuccess: async () => copyWasm(),
});
