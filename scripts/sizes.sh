#!/usr/bin/env bash
# Measures what users download: each bundle and wasm binary in dist/, raw, gzip -9, and for
# JavaScript also minified (esbuild, as a bundler would) then gzipped. Prints a Markdown
# table; with --readme, writes it into README.md between the "sizes" markers.
#
#   bash scripts/sizes.sh [--readme]     (run after `npx tsup`)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -f dist/browser.js ] || { echo "sizes: dist/ is not built (npx tsup)" >&2; exit 1; }

node --input-type=module - "$@" <<'JS'
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { transform } from "esbuild";

const files = [
  ["dist/browser.js", "browser entry (`fused-loss` in browsers and bundlers)"],
  ["dist/index.js", "Node entry (ESM; `index.cjs` is the same code)"],
  ["dist/inline.js", "`fused-loss/inline` (both wasm builds embedded)"],
  ["dist/fused_loss_simd.wasm", "SIMD128 build (one of the two is downloaded)"],
  ["dist/fused_loss_scalar.wasm", "baseline build, engines without SIMD"],
];
const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const gz = (b) => gzipSync(b, { level: 9 }).length;
const rows = ["| file | what | raw | gzip | minified + gzip |", "| --- | --- | ---: | ---: | ---: |"];
for (const [file, what] of files) {
  const bytes = readFileSync(file);
  let min = "";
  if (file.endsWith(".js")) {
    const { code } = await transform(bytes.toString("utf8"), { minify: true, format: "esm", target: "es2022" });
    min = kb(gz(Buffer.from(code)));
  }
  rows.push(`| \`${file.replace("dist/", "")}\` | ${what} | ${kb(bytes.length)} | ${kb(gz(bytes))} | ${min} |`);
}
const table = rows.join("\n");
console.log(table);
if (process.argv.includes("--readme")) {
  const start = "<!-- sizes:start (scripts/sizes.sh --readme) -->";
  const end = "<!-- sizes:end -->";
  const readme = readFileSync("README.md", "utf8");
  const i = readme.indexOf(start);
  const j = readme.indexOf(end);
  if (i < 0 || j < i) throw new Error(`README.md has no ${start} … ${end} section`);
  writeFileSync("README.md", readme.slice(0, i + start.length) + "\n" + table + "\n" + readme.slice(j));
  console.log("sizes: README.md updated");
}
JS
