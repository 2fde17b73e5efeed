#!/usr/bin/env bash
# Runs the crate's #[wasm_bindgen_test] tests inside wasm with SIMD on, in Node:
# cargo test for wasm32-unknown-unknown with wasm-bindgen-test-runner as the
# cargo runner (what `wasm-pack test --node` does, minus its download checks).
#
#   bash scripts/test-wasm-kernels.sh [extra cargo test args, e.g. --release or a test name filter]
#
# Environment knobs:
#   FUSED_LOSS_SKIP_SETUP=1    don't run setup-toolchain.sh when build/toolchain.env exists
#   FUSED_LOSS_WASM_TEST_SIMD=0   run the same tests in a scalar (-simd128) build instead
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ ! -f build/toolchain.env ] || [ "${FUSED_LOSS_SKIP_SETUP:-0}" != 1 ]; then
  bash scripts/setup-toolchain.sh
fi
# shellcheck source=/dev/null
. build/toolchain.env

if [ "${FUSED_LOSS_WASM_TEST_SIMD:-1}" = 0 ]; then
  variant=scalar; export RUSTFLAGS="-C target-feature=-simd128"
else
  variant=simd; export RUSTFLAGS="-C target-feature=+simd128"
fi
# Its own target dir: the test profile would otherwise evict build-wasm.sh's artifacts.
export CARGO_TARGET_DIR="$ROOT/target/wasm-test-$variant"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
# Node, not a browser: the runner picks Node unless a test module asks for a browser.
unset WASM_BINDGEN_USE_BROWSER CHROMEDRIVER GECKODRIVER SAFARIDRIVER

echo "test-wasm-kernels: cargo test --target wasm32-unknown-unknown ($variant, RUSTFLAGS='$RUSTFLAGS')" >&2
# --tests: lib and integration tests; doctests can't run on a wasm target.
exec cargo test -p fused-loss --target wasm32-unknown-unknown --tests "$@"
