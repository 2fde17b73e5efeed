/**
 * The README's table of download sizes (written by `scripts/sizes.sh --readme`) describes the
 * dist/ this build produces: every number within 3% (or 1 KiB) of a fresh measurement, so a
 * change to the kernels or the bundles that moves a size fails here until the table is
 * regenerated.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** file → its KiB numbers (raw, gzip, minified + gzip), from a Markdown table. */
function parse(table: string): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const line of table.split("\n")) {
    const file = /^\| `([^`]+)` \|/.exec(line)?.[1];
    if (file) out[file] = [...line.matchAll(/([\d.]+) KiB/g)].map((m) => Number(m[1]));
  }
  return out;
}

describe.skipIf(!existsSync(`${ROOT}/dist/browser.js`))("README sizes", () => {
  it("match dist/ (regenerate with bash scripts/sizes.sh --readme)", () => {
    const readme = readFileSync(`${ROOT}/README.md`, "utf8");
    const block = /<!-- sizes:start[^>]*-->([\s\S]*?)<!-- sizes:end -->/.exec(readme)?.[1];
    expect(block, "the sizes block in README.md").toBeDefined();
    const documented = parse(block!);
    const measured = parse(execFileSync("bash", ["scripts/sizes.sh"], { cwd: ROOT, encoding: "utf8" }));
    expect(Object.keys(documented).sort()).toEqual(Object.keys(measured).sort());
    for (const [file, now] of Object.entries(measured)) {
      expect(documented[file].length, file).toBe(now.length);
      now.forEach((kib, i) => {
        const said = documented[file][i];
        expect(Math.abs(said - kib), `${file} column ${i + 1}: README says ${said} KiB, dist/ has ${kib} KiB`).toBeLessThanOrEqual(Math.max(1, 0.03 * kib));
      });
    }
  });
});
