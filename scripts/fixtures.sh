#!/usr/bin/env bash
# `npm run fixtures`: regenerates test/fixtures/*.json from real PyTorch. Installs Debian's
# python3-torch and python3-torchvision first when they are missing (the fixtures are
# committed, so only a change of the generator needs this).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
  command -v apt-get >/dev/null 2>&1 || { echo "fixtures: needs python3-torch and python3-torchvision (Debian) or torch in /usr/bin/python3" >&2; exit 1; }
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
  export DEBIAN_FRONTEND=noninteractive
  echo "fixtures: installing Debian's python3-torch and python3-torchvision" >&2
  "${sudo[@]}" apt-get install -y -q python3-torch python3-torchvision ||
    { "${sudo[@]}" apt-get update -q && "${sudo[@]}" apt-get install -y -q python3-torch python3-torchvision; }
fi
exec /usr/bin/python3 scripts/gen_fixtures.py "$@"
