#!/usr/bin/env bash
# Builds the two wasm binaries of crate/ and runs them through wasm-opt:
#
#   build/wasm/simd/fused_loss_bg.wasm    +simd128 (hand-written core::arch::wasm32 paths)
#   build/wasm/scalar/fused_loss_bg.wasm  -simd128 (baseline for engines without SIMD)
#
# each with its wasm-bindgen glue fused_loss.js (--target web: exports initSync and a
# default async init) and its declarations fused_loss.d.ts / fused_loss_bg.wasm.d.ts
# (tsconfig.json type-checks ts/wasm/node-provider.ts's import of the glue against them).
#
#   bash scripts/build-wasm.sh [simd|scalar]...   (default: both)
#
# Environment knobs:
#   FUSED_LOSS_SKIP_SETUP=1   don't run setup-toolchain.sh when build/toolchain.env exists
#   FUSED_LOSS_WASM_OPT_FLAGS optimisation flags for wasm-opt (default: -O3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# setup-toolchain.sh is silent and takes well under a second when nothing is
# missing, and it is what notices a stale sysroot after a rustc update, so run
# it every time unless told not to.
if [ ! -f build/toolchain.env ] || [ "${FUSED_LOSS_SKIP_SETUP:-0}" != 1 ]; then
  bash scripts/setup-toolchain.sh
fi
# shellcheck source=/dev/null
. build/toolchain.env

WASM_OPT="$FUSED_LOSS_WASM_OPT"
WASM_DIS="$(dirname "$WASM_OPT")/wasm-dis"
OPT_FLAGS="${FUSED_LOSS_WASM_OPT_FLAGS:--O3}"
OUT_NAME=fused_loss
# What rustc's generic wasm32 CPU emits besides SIMD (LLVM 20+ defaults). The
# binaries' target_features section says the same; naming them keeps wasm-opt's
# validation explicit and independent of that section being kept.
BASE_FEATURES=(--enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int
               --enable-mutable-globals --enable-reference-types --enable-multivalue)

die() { echo "build-wasm: ERROR: $*" >&2; exit 1; }

variants=("$@")
[ "${#variants[@]}" -gt 0 ] || variants=(simd scalar)

sha() { sha256sum "$1" | cut -d' ' -f1; }

# Number of SIMD instructions/types in a module's text form.
simd_count() {
  "$WASM_DIS" --all-features "$1" 2>/dev/null \
    | grep -cE '\bv128\b|\b(v128|i8x16|i16x8|i32x4|i64x2|f32x4|f64x2)\.[a-z_]+' || true
}

build_variant() {
  local v="$1" rustflags features=("${BASE_FEATURES[@]}")
  case "$v" in
    simd)   rustflags="-C target-feature=+simd128"; features+=(--enable-simd) ;;
    scalar) rustflags="-C target-feature=-simd128" ;;
    *) die "unknown variant '$v' (simd|scalar)" ;;
  esac
  local target_dir="$ROOT/target/wasm-$v"
  local stage="$target_dir/pkg" out="$ROOT/build/wasm/$v"

  rm -rf "$stage"
  echo "build-wasm: [$v] wasm-pack build (RUSTFLAGS='$rustflags', CARGO_TARGET_DIR=target/wasm-$v)"
  # RUSTFLAGS replaces .cargo/config.toml's target rustflags (+simd128) as a
  # whole, so each variant gets exactly its own feature set. A target dir per
  # variant keeps the two from invalidating each other's cache.
  # --no-opt: wasm-pack's wasm-opt would be downloaded; ours runs below.
  RUSTFLAGS="$rustflags" CARGO_TARGET_DIR="$target_dir" \
    wasm-pack --quiet build crate --release --target web --no-pack --no-gitignore \
      --no-opt --out-dir "$stage" --out-name "$OUT_NAME"

  local raw="$stage/${OUT_NAME}_bg.wasm"
  [ -s "$raw" ] || die "[$v] wasm-pack produced no $raw"
  # The package always hands the glue its module. Its fallback `new URL('…_bg.wasm',
  # import.meta.url)` would make bundlers look for a file that the package names differently.
  local default_url="module_or_path = new URL('${OUT_NAME}_bg.wasm', import.meta.url);"
  grep -qF "$default_url" "$stage/$OUT_NAME.js" || die "[$v] glue changed: default wasm URL not found"
  sed -i "s|$default_url|throw new Error('fused-loss: the wasm module must be passed explicitly');|" "$stage/$OUT_NAME.js"

  # wasm-opt only when the wasm-bindgen output changed (cargo is incremental;
  # -O3 on the whole module is the slow part of a no-op rebuild).
  local glue=() f
  for f in "$stage"/*; do
    [ "$f" = "$raw" ] || glue+=("$f")
  done
  local stamp="$out/.built-from" want
  want="$(sha "$raw") $OPT_FLAGS ${features[*]} $(sha "$0")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -s "$out/${OUT_NAME}_bg.wasm" ]; then
    local same=1
    for f in "${glue[@]}"; do cmp -s "$f" "$out/$(basename "$f")" || same=0; done
    if [ "$same" = 1 ]; then echo "build-wasm: [$v] unchanged"; return 0; fi
  fi

  mkdir -p "$out"
  local tmp="$out/.${OUT_NAME}_bg.wasm.tmp"
  # shellcheck disable=SC2086
  "$WASM_OPT" $OPT_FLAGS "${features[@]}" "$raw" -o "$tmp" \
    || die "[$v] wasm-opt failed"

  # Each binary must validate with exactly its intended feature set. The
  # target_features section would re-enable whatever it lists, so validate a
  # copy without it. The scalar binary must also hold no v128 op at all.
  local n
  n="$(simd_count "$tmp")"
  "$WASM_OPT" --all-features --strip-target-features "$tmp" -o "$tmp.nofeat"
  if ! "$WASM_OPT" --mvp-features "${features[@]}" "$tmp.nofeat" -o /dev/null >"$tmp.log" 2>&1; then
    head -n 20 "$tmp.log" >&2
    die "[$v] binary does not validate with only: ${features[*]}"
  fi
  rm -f "$tmp.nofeat" "$tmp.log"
  if [ "$v" = scalar ]; then
    [ "$n" -eq 0 ] || die "[scalar] binary contains $n SIMD instructions"
  else
    [ "$n" -gt 0 ] || die "[simd] binary contains no SIMD instructions (was +simd128 applied?)"
  fi
  node -e 'const b=require("fs").readFileSync(process.argv[1]); if(!WebAssembly.validate(b)){console.error("invalid");process.exit(1)}' "$tmp" \
    || die "[$v] WebAssembly.validate failed in Node"

  mv -f "$tmp" "$out/${OUT_NAME}_bg.wasm"
  cp "${glue[@]}" "$out/"
  echo "$want" >"$stamp"
  echo "build-wasm: [$v] $n SIMD instructions"
}

for v in "${variants[@]}"; do build_variant "$v"; done

# Sizes: raw and gzip -9, and the unoptimised wasm-bindgen output for comparison.
for v in "${variants[@]}"; do
  f="build/wasm/$v/${OUT_NAME}_bg.wasm"
  pre="target/wasm-$v/pkg/${OUT_NAME}_bg.wasm"
  printf 'build-wasm: %-40s %8d bytes, %7d gzipped (before wasm-opt: %d)\n' \
    "$f" "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)" "$(wc -c <"$pre")"
done
