#!/usr/bin/env bash
# Build (or reuse) the Python venv of one ComfyUI release tree and print its python's path.
#   .ci/host_venv.sh ../shared/host/comfyui-0.8.0
# The venv lives in ~/.cache/animatediff-pack-hosts/<release>-<hash>, where the hash covers
# the release's requirements, the pack's and this script: a change to any rebuilds it.
set -euo pipefail
tree=$(cd "$1" && pwd)
pack=$(cd "$(dirname "$0")/.." && pwd)
key=$(cat "$tree/requirements.txt" "$pack/requirements.txt" "$0" | sha256sum | cut -c1-12)
venv="${ANIMATEDIFF_HOST_VENVS:-$HOME/.cache/animatediff-pack-hosts}/$(basename "$tree")-$key"
if [ ! -x "$venv/bin/python" ] || [ ! -e "$venv/.complete" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  reqs=$(mktemp)
  # torch comes pinned below: the CPU wheel on this disk can't serve (torchvision links the CUDA build).
  grep -vE '^(torch|torchvision|torchaudio)$' "$tree/requirements.txt" > "$reqs"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    torch==2.9.1 torchvision==0.24.1 torchaudio==2.9.1 requests -r "$reqs" -r "$pack/requirements.txt" >&2
  rm -f "$reqs"
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
