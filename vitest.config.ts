import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  // The tfjs adapter imports the main entry by its package name; in tests that is the source.
  resolve: { alias: [{ find: /^fused-loss$/, replacement: fileURLToPath(new URL("./ts/index.ts", import.meta.url)) }] },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    pool: "forks",
  },
});
