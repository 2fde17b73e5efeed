/**
 * The benchmark harness itself (`npm run bench` is the main job): a --quick run of one loss
 * completes, measures every runner on every quick shape, and its runners agree on the loss.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));

describe("npm run bench -- --quick", () => {
  it("runs NLLLoss on every runner, with a results table, a memory table and no disagreement", () => {
    // scripts/bench.sh as `npm run bench` runs it, over the dist/ the test run built.
    const out = execFileSync("bash", ["scripts/bench.sh", "--quick", "--only", "NLLLoss"], {
      cwd: root,
      env: { ...process.env, FUSED_LOSS_SKIP_BUILD: "1" },
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 120_000,
    });
    expect(out).toMatch(/NLLLoss \(1024, 1000\): simd zero-copy [\d.]+M\/s, simd [\d.]+M\/s, scalar [\d.]+M\/s, js [\d.]+M\/s/);
    const md = readFileSync(`${root}/build/bench-quick.md`, "utf8");
    expect(md).toContain("## NLLLoss");
    expect(md).toMatch(/\| \(32, 10\) \| [\d.]+ \([\d.]+×\) \| [\d.]+ \([\d.]+×\) \| [\d.]+ \([\d.]+×\) \| [\d.]+ \| [\d.]+ \([\d.]+×\) \| [\d.]+ \([\d.]+×\) \|/);
    expect(md).toContain("## Memory");
    expect(md).not.toContain("## Disagreements");
  }, 150_000);
});
