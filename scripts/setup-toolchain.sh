#!/usr/bin/env bash
# Makes this machine able to build crate/ to wasm32-unknown-unknown, idempotently.
# Silent when everything is already in place; says what it installs otherwise.
#
#   bash scripts/setup-toolchain.sh [--rebuild-sysroot]
#
# Result: build/toolchain.env, to be sourced by scripts/build-wasm.sh and
# scripts/test-wasm-kernels.sh. It puts the right `cargo`/`rustc` first on PATH
# and exports FUSED_LOSS_* variables (see write_env below).
#
# Environment knobs:
#   FUSED_LOSS_TOOLCHAIN=debian   skip the rustup path even where it would work
#                                 (rustup is retried after `rm build/.rustup-target-add.failed`)
#   FUSED_LOSS_REBUILD_SYSROOT=1  same as --rebuild-sysroot (Debian path only)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WASM_TARGET=wasm32-unknown-unknown
WASM_PACK_VERSION=0.15.1
# Bump when the sysroot recipe below changes, so existing sysroots get rebuilt.
SYSROOT_RECIPE=2
CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"

REBUILD_SYSROOT="${FUSED_LOSS_REBUILD_SYSROOT:-0}"
for arg in "$@"; do
  case "$arg" in
    --rebuild-sysroot) REBUILD_SYSROOT=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "setup-toolchain: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

CLEANUP=()
trap 'rm -rf "${CLEANUP[@]}"' EXIT

say() { echo "setup-toolchain: $*" >&2; }
die() { echo "setup-toolchain: ERROR: $*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi

mkdir -p build
# Several npm scripts may call this at once (test + bench); serialise them.
exec 9>build/.setup-toolchain.lock
flock 9

# The wasm-bindgen CLI must match the library version exactly (its ABI changes
# between patch releases), so take the pin from crate/Cargo.toml.
WASM_BINDGEN_VERSION="$(sed -nE 's/^[[:space:]]*wasm-bindgen[[:space:]]*=.*"=?([0-9]+\.[0-9]+\.[0-9]+)".*/\1/p' crate/Cargo.toml | head -n1)"
[ -n "$WASM_BINDGEN_VERSION" ] || die "cannot read the wasm-bindgen pin from crate/Cargo.toml"

# The rustup cargo (host builds: cargo install). Falls back to whatever cargo exists.
if [ -x "$CARGO_HOME/bin/cargo" ]; then HOST_CARGO="$CARGO_HOME/bin/cargo"
elif command -v cargo >/dev/null 2>&1; then HOST_CARGO="$(command -v cargo)"
else HOST_CARGO=""
fi

# ---------------------------------------------------------------------------
# 1. A rustc that can target wasm32.
# ---------------------------------------------------------------------------
TOOLCHAIN=""
if [ "${FUSED_LOSS_TOOLCHAIN:-}" != "debian" ] && command -v rustup >/dev/null 2>&1; then
  if rustup target list --installed 2>/dev/null | grep -qx "$WASM_TARGET"; then
    TOOLCHAIN=rustup
  elif [ -f build/.rustup-target-add.failed ]; then
    : # rustup could not download before; don't spend seconds retrying on every build
  else
    say "rustup target add $WASM_TARGET"
    if rustup target add "$WASM_TARGET" >build/.rustup-target-add.log 2>&1; then
      TOOLCHAIN=rustup
    else
      touch build/.rustup-target-add.failed
      say "rustup cannot add $WASM_TARGET (no download?); using Debian's rustc-web with a locally built sysroot"
    fi
  fi
fi

DEB_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)

install_debian_packages() {
  local missing=() p
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  # Only refresh the package lists when apt does not know a package yet.
  local log=build/.apt.log
  if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
    $SUDO apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed"; }
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >"$log" 2>&1 \
    || { cat "$log" >&2; die "apt-get install ${missing[*]} failed"; }
}

# Debian ships rustc without a wasm32 std. Build one from rust-web-src's library
# (vendored deps, so no network) with -Zbuild-std and drop the rlibs into rustc's
# own sysroot, so plain `cargo build --target wasm32-unknown-unknown` works.
build_debian_sysroot() {
  local rustc=/usr/bin/rustc cargo=/usr/bin/cargo
  local libdir stamp want library tmp
  libdir="$("$rustc" --print target-libdir --target "$WASM_TARGET")"
  stamp="$libdir/.fused-loss-sysroot-stamp"
  want="$("$rustc" -vV; echo "recipe: $SYSROOT_RECIPE")"
  if [ "$REBUILD_SYSROOT" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  if [ -f "$stamp" ]; then say "wasm32 sysroot is stale or a rebuild was asked for; rebuilding"; fi

  library="$(ls -d /usr/src/rustc-*/library 2>/dev/null | sort -V | tail -n1 || true)"
  # The std sources must be exactly the compiler's version.
  local release
  release="$("$rustc" -vV | sed -n 's/^release: //p')"
  [ -d "/usr/src/rustc-$release/library" ] && library="/usr/src/rustc-$release/library"
  [ -n "$library" ] && [ -d "$library/vendor" ] || die "rust-web-src's library/vendor not found under /usr/src/rustc-*"

  tmp="$(mktemp -d "${TMPDIR:-/tmp}/fused-loss-sysroot.XXXXXX")"
  CLEANUP+=("$tmp")
  mkdir -p "$tmp/p/src" "$tmp/p/.cargo"
  cat >"$tmp/p/Cargo.toml" <<'EOF'
[package]
name = "sysroot-builder"
version = "0.0.0"
edition = "2021"

[lib]
path = "src/lib.rs"

[profile.release]
opt-level = 3
debug = false
debug-assertions = false
overflow-checks = false
panic = "abort"
codegen-units = 1
EOF
  echo '#![no_std]' >"$tmp/p/src/lib.rs"
  cat >"$tmp/p/.cargo/config.toml" <<EOF
[source.crates-io]
replace-with = "vendored"

[source.vendored]
directory = "$library/vendor"

[net]
offline = true
EOF
  say "building the wasm32 std sysroot from $library (about a minute)"
  local t0=$SECONDS
  # PATH=/usr/bin first: rustup's older rustc would reject 1.96 rlibs.
  # -Cembed-bitcode=yes (after cargo's own =no): the project's release profile
  # uses LTO, which needs bitcode in std's rlibs, as in rustup's std.
  # No +simd128 here: the baseline std must stay SIMD-free for the scalar build.
  # `test` too: cargo test's harness needs libtest (wasm-bindgen-test tests).
  if ! (cd "$tmp/p" && env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET -u CARGO_ENCODED_RUSTFLAGS \
        PATH="/usr/bin:$PATH" RUSTC="$rustc" RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Cembed-bitcode=yes" \
        CARGO_HOME="$tmp/cargo-home" \
        "$cargo" build --release --target "$WASM_TARGET" -Zbuild-std=std,panic_abort,test \
        >"$tmp/build.log" 2>&1); then
    tail -n 40 "$tmp/build.log" >&2
    die "building the wasm32 sysroot failed"
  fi

  # Swap the new rlibs in as a whole: leftover rlibs of another build would make
  # rustc see two candidates for `std` (E0464).
  local deps="$tmp/p/target/$WASM_TARGET/release/deps" new="$libdir.new.$$"
  $SUDO rm -rf "$new"
  $SUDO mkdir -p "$new"
  local f n=0
  for f in "$deps"/*.rlib; do
    case "$(basename "$f")" in libsysroot_builder-*) continue ;; esac
    $SUDO cp "$f" "$new/"; n=$((n + 1))
  done
  [ "$n" -gt 5 ] || die "sysroot build produced only $n rlibs"
  $SUDO mkdir -p "$(dirname "$libdir")"
  if [ -d "$libdir" ]; then $SUDO rm -rf "$libdir.old.$$"; $SUDO mv "$libdir" "$libdir.old.$$"; fi
  $SUDO mv "$new" "$libdir"
  $SUDO rm -rf "$libdir.old.$$"

  verify_debian_sysroot "$tmp" || die "the freshly built wasm32 sysroot does not work"
  printf '%s\n' "$want" | $SUDO tee "$stamp" >/dev/null
  say "wasm32 sysroot: $n rlibs in $libdir ($((SECONDS - t0)) s)"
}

# A std cdylib must build for wasm32 with plain cargo (no build-std, no
# RUSTC_BOOTSTRAP): unoptimised (object code), with LTO (bitcode), and as a
# test harness (libtest).
verify_debian_sysroot() {
  local tmp="$1" sysroot
  sysroot="$(/usr/bin/rustc --print sysroot)"
  [ -d "$sysroot/lib/rustlib/$WASM_TARGET/lib" ] || return 1
  mkdir -p "$tmp/v/src"
  cat >"$tmp/v/Cargo.toml" <<'EOF'
[package]
name = "sysroot-check"
version = "0.0.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[profile.release]
lto = true
panic = "abort"
EOF
  cat >"$tmp/v/src/lib.rs" <<'EOF'
#[no_mangle]
pub extern "C" fn check(n: u32) -> u32 {
    let v: Vec<u32> = (0..n).collect();
    v.iter().sum::<u32>() + format!("{n}").len() as u32
}

#[cfg(test)]
#[test]
fn sums() {
    assert_eq!(check(3), 4);
}
EOF
  local cmd
  for cmd in "build" "build --release" "test --no-run"; do
    # shellcheck disable=SC2086
    if ! (cd "$tmp/v" && env -u RUSTC_BOOTSTRAP -u RUSTFLAGS -u CARGO_TARGET_DIR -u CARGO_ENCODED_RUSTFLAGS \
          PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc /usr/bin/cargo $cmd --offline --quiet --target "$WASM_TARGET" \
          >"$tmp/verify.log" 2>&1); then
      cat "$tmp/verify.log" >&2
      return 1
    fi
  done
  [ -s "$tmp/v/target/$WASM_TARGET/release/sysroot_check.wasm" ]
}

if [ -z "$TOOLCHAIN" ]; then
  install_debian_packages
  [ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] || die "Debian's rustc/cargo are missing after installing ${DEB_PACKAGES[*]}"
  command -v rust-lld >/dev/null 2>&1 || [ -x /usr/bin/rust-lld ] || die "rust-lld (lld-22) is missing"
  build_debian_sysroot
  TOOLCHAIN=debian
fi

# ---------------------------------------------------------------------------
# 2. Pinned wasm-bindgen-cli and wasm-pack (host tools, built with rustup's cargo).
# ---------------------------------------------------------------------------

# Waits for a `cargo install <crate>` that is already running (started by hand or
# by a parallel setup) instead of racing it.
wait_for_other_install() {
  local crate="$1" waited=0
  while pgrep -f "cargo install.* $crate( |$)" >/dev/null 2>&1; do
    [ "$waited" = 0 ] && say "waiting for a running 'cargo install $crate'"
    waited=1
    sleep 5
  done
}

# cargo install --locked, and where the crate's Cargo.lock pins a version the
# registry does not serve (seen: wasm-bindgen-cli 0.2.130 locks webpki-roots
# 1.0.11, absent here), re-pin only those packages to the newest compatible
# version they have and install from the patched lock, still --locked.
cargo_install_pinned() {
  local crate="$1" version="$2" log
  log="$(mktemp)"
  CLEANUP+=("$log")
  say "cargo install --locked $crate --version $version"
  if env -u RUSTC -u RUSTC_BOOTSTRAP -u RUSTFLAGS -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET \
       PATH="$CARGO_HOME/bin:$PATH" \
       "$HOST_CARGO" install --locked --quiet "$crate" --version "$version" >"$log" 2>&1; then
    rm -f "$log"; return 0
  fi
  if ! grep -q 'failed to select a version for the requirement' "$log"; then
    cat "$log" >&2
    die "cargo install $crate $version failed"
  fi
  local cratefile tmp
  cratefile="$(ls "$CARGO_HOME"/registry/cache/*/"$crate-$version.crate" 2>/dev/null | head -n1)"
  [ -n "$cratefile" ] || { cat "$log" >&2; die "cannot find $crate-$version.crate to repair its lock file"; }
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/fused-loss-install.XXXXXX")"
  CLEANUP+=("$tmp")
  tar -xzf "$cratefile" -C "$tmp"
  local src="$tmp/$crate-$version" name locked
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    if (cd "$src" && env -u RUSTC -u RUSTC_BOOTSTRAP PATH="$CARGO_HOME/bin:$PATH" "$HOST_CARGO" fetch >"$log" 2>&1); then
      break
    fi
    name="$(sed -nE 's/.*failed to select a version for the requirement `([^ ]+) = .*\(locked to ([^)]+)\).*/\1/p' "$log" | head -n1)"
    locked="$(sed -nE 's/.*failed to select a version for the requirement `([^ ]+) = .*\(locked to ([^)]+)\).*/\2/p' "$log" | head -n1)"
    [ -n "$name" ] && [ -n "$locked" ] || { cat "$log" >&2; die "cannot repair the lock file of $crate $version"; }
    say "  $crate's Cargo.lock pins $name $locked, which the registry lacks; re-pinning it"
    (cd "$src" && env -u RUSTC -u RUSTC_BOOTSTRAP PATH="$CARGO_HOME/bin:$PATH" "$HOST_CARGO" update --quiet -p "$name@$locked" >"$log" 2>&1) \
      || { cat "$log" >&2; die "cargo update -p $name failed"; }
  done
  if ! env -u RUSTC -u RUSTC_BOOTSTRAP -u RUSTFLAGS -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET \
       PATH="$CARGO_HOME/bin:$PATH" CARGO_TARGET_DIR="$tmp/target" \
       "$HOST_CARGO" install --locked --quiet --path "$src" >"$log" 2>&1; then
    cat "$log" >&2
    die "cargo install $crate $version (patched lock) failed"
  fi
  rm -rf "$tmp" "$log"
}

# True when "$1 --version" prints exactly version $2.
has_version() {
  local bin="$CARGO_HOME/bin/$1" out
  [ -x "$bin" ] || bin="$(command -v "$1" 2>/dev/null)" || return 1
  out="$("$bin" --version 2>/dev/null)" || return 1
  [ "$(awk '{print $2}' <<<"$out")" = "$2" ]
}

ensure_tool() {
  local bin="$1" crate="$2" version="$3"
  has_version "$bin" "$version" && return 0
  wait_for_other_install "$crate"
  has_version "$bin" "$version" && return 0
  [ -n "$HOST_CARGO" ] || die "no cargo to install $crate with"
  cargo_install_pinned "$crate" "$version"
  has_version "$bin" "$version" || die "$bin --version is not $version after installing it"
}

ensure_tool wasm-bindgen wasm-bindgen-cli "$WASM_BINDGEN_VERSION"
# wasm-bindgen-test-runner comes with wasm-bindgen-cli.
has_version wasm-bindgen-test-runner "$WASM_BINDGEN_VERSION" \
  || die "wasm-bindgen-test-runner $WASM_BINDGEN_VERSION missing although wasm-bindgen is installed"
ensure_tool wasm-pack wasm-pack "$WASM_PACK_VERSION"

# ---------------------------------------------------------------------------
# 3. wasm-opt from the npm devDependency binaryen (never wasm-pack's download,
#    nor the npm wasm-pack package: both fetch binaries from outside).
# ---------------------------------------------------------------------------
if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -e node_modules/.package-lock.json ] \
   || { [ -e package-lock.json ] && [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  if [ -e package-lock.json ]; then
    say "npm ci"
    npm ci --no-audit --no-fund --loglevel=error >&2
  else
    say "npm install"
    npm install --no-audit --no-fund --loglevel=error >&2
  fi
  [ -x node_modules/.bin/wasm-opt ] || die "node_modules/.bin/wasm-opt missing after npm install (binaryen devDependency?)"
fi

# ---------------------------------------------------------------------------
# 4. build/toolchain.env
# ---------------------------------------------------------------------------
if [ "$TOOLCHAIN" = debian ]; then
  # /usr/bin first so `cargo`/`rustc` are Debian's 1.96 (rustup's would reject
  # its rlibs); ~/.cargo/bin after it for wasm-pack and wasm-bindgen.
  env_path='/usr/bin:'"$CARGO_HOME"'/bin:$PATH'
  env_rustc=/usr/bin/rustc
else
  env_path="$CARGO_HOME"'/bin:$PATH'
  env_rustc="$CARGO_HOME/bin/rustc"
fi
env_new="$(cat <<EOF
# Generated by scripts/setup-toolchain.sh; do not edit, re-run that script.
export PATH="$env_path"
export RUSTC="$env_rustc"
export FUSED_LOSS_TOOLCHAIN="$TOOLCHAIN"
export FUSED_LOSS_ROOT="$ROOT"
export FUSED_LOSS_WASM_OPT="$ROOT/node_modules/.bin/wasm-opt"
export FUSED_LOSS_WASM_BINDGEN_VERSION="$WASM_BINDGEN_VERSION"
export FUSED_LOSS_WASM_PACK_VERSION="$WASM_PACK_VERSION"
EOF
)"
if [ ! -f build/toolchain.env ] || [ "$(cat build/toolchain.env)" != "$env_new" ]; then
  printf '%s\n' "$env_new" >build/toolchain.env
  say "wrote build/toolchain.env ($TOOLCHAIN toolchain)"
fi
