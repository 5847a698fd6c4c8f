#!/usr/bin/env bash
# What Roundhouse needs from the system, on Debian/Ubuntu:
#   libopenblas0-pthread   the BLAS the CPU backend calls (without it: a pure-Java BLAS, ~10x slower)
#   dataset-fashion-mnist  the dataset of the default job (/usr/share/datasets/fashion-mnist)
# Usage: scripts/install-deps.sh            install both (needs root or sudo)
#        scripts/install-deps.sh --check-or-install [roundhouse args]
#                                           used by scripts/roundhouse: installs what is missing when
#                                           it can, otherwise says how and stops before a train job
set -euo pipefail
packages=(libopenblas0-pthread dataset-fashion-mnist)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

mode="${1:-install}"
if [ "$mode" = "--check-or-install" ]; then
  shift
  # Only a train job with the default data folder needs the dataset package.
  needs_data=false
  if [ "${1:-}" = "train" ] && ! printf '%s\n' "$@" | grep -q '^data\.dir='; then needs_data=true; fi
  if ! command -v dpkg >/dev/null 2>&1; then exit 0; fi   # not Debian: the job itself reports what is missing
  want=()
  for p in "${missing[@]}"; do
    if [ "$p" = dataset-fashion-mnist ] && [ "$needs_data" = false ]; then continue; fi
    want+=("$p")
  done
  [ ${#want[@]} -eq 0 ] && exit 0
  missing=("${want[@]}")
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
    echo "roundhouse: missing Debian packages: ${missing[*]}" >&2
    echo "  install them with:  sudo apt-get install ${missing[*]}" >&2
    echo "  (or pass data.dir=FOLDER with the four Fashion-MNIST IDX files)" >&2
    exit 1
  fi
fi
echo "roundhouse: installing ${missing[*]} ..." >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >&2
$sudo apt-get install -y -q "${missing[@]}" >&2
