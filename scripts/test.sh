#!/usr/bin/env bash
# `npm test`: everything from a fresh clone. Installs what is missing (toolchain, npm
# packages), builds both wasm binaries and dist/, then runs the Rust tests on the host, the
# kernel tests inside wasm with SIMD on, and the vitest suites on every backend.
# Ends with one line "N passed, N failed" summing all runners.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOGS="$ROOT/build/test-logs"
mkdir -p "$LOGS"

passed=0
failed=0
status=0

step() { echo; echo "== $* =="; }
fail_setup() { echo "test: $1 failed; see the output above" >&2; echo "0 passed, 1 failed"; exit 1; }

step "toolchain"
bash scripts/setup-toolchain.sh || fail_setup "toolchain setup"
step "build wasm"
FUSED_LOSS_SKIP_SETUP=1 bash scripts/build-wasm.sh || fail_setup "wasm build"
step "build dist"
npx --no-install tsup --silent || fail_setup "tsup build"
npx --no-install tsc -p . || fail_setup "type check"

# shellcheck source=/dev/null
. build/toolchain.env

# Sums "test result: ok. X passed; Y failed" lines of cargo's output.
count_cargo() {
  local p f
  read -r p f < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p + 0, f + 0 }' "$1")
  passed=$((passed + p))
  failed=$((failed + f))
}

step "cargo test (host, scalar lanes)"
cargo test --release 2>&1 | tee "$LOGS/cargo.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { status=1; grep -q "^test result:" "$LOGS/cargo.log" || failed=$((failed + 1)); }
count_cargo "$LOGS/cargo.log"

step "kernel tests inside wasm (SIMD128)"
bash scripts/test-wasm-kernels.sh 2>&1 | tee "$LOGS/wasm.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { status=1; grep -q "^test result:" "$LOGS/wasm.log" || failed=$((failed + 1)); }
count_cargo "$LOGS/wasm.log"

step "Chromium for the browser tests"
# A failed install counts as a failure; test/browser fails too (it must run where apt exists).
bash scripts/setup-browser.sh || { status=1; failed=$((failed + 1)); }

step "vitest (simd, scalar and js backends)"
npx --no-install vitest run --reporter=default --reporter=json --outputFile.json="$LOGS/vitest.json"
vstatus=$?
[ "$vstatus" -eq 0 ] || status=1
if [ -f "$LOGS/vitest.json" ]; then
  read -r vp vf < <(node -e 'const r=require(process.argv[1]); console.log(r.numPassedTests, r.numFailedTests + (r.numTotalTestSuites && r.success===false && r.numFailedTests===0 ? 1 : 0))' "$LOGS/vitest.json")
  passed=$((passed + vp))
  failed=$((failed + vf))
else
  failed=$((failed + 1))
fi

echo
echo "$passed passed, $failed failed"
exit $status
