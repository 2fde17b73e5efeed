#!/usr/bin/env bash
# `npm run bench`, the main job: installs what is missing, builds both wasm binaries and dist/,
# then benchmarks every loss, shape and backend (bench/bench.ts). Arguments go to the
# benchmark: `npm run bench -- --quick` finishes in under a minute.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup-toolchain.sh
FUSED_LOSS_SKIP_SETUP=1 bash scripts/build-wasm.sh
npx --no-install tsup --silent
exec node --expose-gc --import tsx bench/bench.ts "$@"
