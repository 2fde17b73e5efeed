#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (test/browser) when it is missing.
# Idempotent and quick when it is there. On a machine without apt-get it only warns: the
# browser tests are then skipped, loudly (they run wherever apt-get can install Chromium).
#
#   FUSED_LOSS_CHROMIUM=/path/to/chromium   use that binary instead
set -uo pipefail

if [ -n "${FUSED_LOSS_CHROMIUM:-}" ]; then
  [ -x "$FUSED_LOSS_CHROMIUM" ] && exit 0
  echo "setup-browser: FUSED_LOSS_CHROMIUM=$FUSED_LOSS_CHROMIUM is not executable" >&2
  exit 1
fi
[ -x /usr/bin/chromium ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "!!! setup-browser: no apt-get here: the browser tests will be SKIPPED (set FUSED_LOSS_CHROMIUM) !!!" >&2
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "setup-browser: not root and no sudo: cannot install chromium" >&2; exit 1; }
  sudo=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
echo "setup-browser: installing Debian's chromium"
# The package lists may be stale or absent on a fresh machine: update only if needed.
if ! "${sudo[@]}" apt-get install -y -q chromium; then
  "${sudo[@]}" apt-get update -q && "${sudo[@]}" apt-get install -y -q chromium || {
    echo "setup-browser: could not install chromium" >&2
    exit 1
  }
fi
[ -x /usr/bin/chromium ] || { echo "setup-browser: chromium installed but /usr/bin/chromium is missing" >&2; exit 1; }
