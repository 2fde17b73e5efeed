#!/usr/bin/env bash
# `npm run bench`, the main job: installs what is missing, builds both wasm binaries and dist/,
# then benchmarks every loss, shape and backend (bench/bench.ts). Arguments go to the
# benchmark: `npm run bench -- --quick` finishes in under a minute.
#
#   FUSED_LOSS_SKIP_BUILD=1   use the dist/ there is (the test of the harness does)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ "${FUSED_LOSS_SKIP_BUILD:-0}" != 1 ]; then
  bash scripts/setup-toolchain.sh
  FUSED_LOSS_SKIP_SETUP=1 bash scripts/build-wasm.sh
  npx --no-install tsup --silent
fi
# One ESM file beside dist/ (its "../dist/index.js" import stays as written), then run it.
npx --no-install esbuild bench/bench.ts --bundle --platform=node --format=esm --target=node18 \
  --outfile=build/bench.mjs --external:../dist/index.js --external:@tensorflow/* --external:tinybench --log-level=warning
exec node --expose-gc build/bench.mjs "$@"
