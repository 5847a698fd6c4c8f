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
  # Only a job that reads the default data folder needs the dataset package: train, spark, and the
  # benchmarks that train, unless data.dir (in the -c file or an override) or data.format=parquet
  # says otherwise.
  needs_data=false
  case "${1:-} ${2:-}" in
    "train "*|"spark "*|"bench train"|"bench stn") needs_data=true ;;
  esac
  data_dir=/usr/share/datasets/fashion-mnist
  data_format=idx
  conf=""
  prev=""
  for a in "$@"; do
    case "$prev" in -c|--config) conf="$a" ;; esac
    case "$a" in --config=*) conf="${a#--config=}" ;; esac
    prev="$a"
  done
  if [ -n "$conf" ] && [ -f "$conf" ]; then
    v="$(sed -n 's/^[[:space:]]*data\.dir[[:space:]]*=[[:space:]]*//p' "$conf" | tail -1)"; [ -n "$v" ] && data_dir="$v"
    v="$(sed -n 's/^[[:space:]]*data\.format[[:space:]]*=[[:space:]]*//p' "$conf" | tail -1)"; [ -n "$v" ] && data_format="$v"
  fi
  for a in "$@"; do
    case "$a" in data.dir=*) data_dir="${a#data.dir=}" ;; data.format=*) data_format="${a#data.format=}" ;; esac
  done
  data_dir="${data_dir%"${data_dir##*[![:space:]]}"}"
  data_dir="${data_dir%/}"
  data_format="${data_format%"${data_format##*[![:space:]]}"}"
  if [ "$data_dir" != /usr/share/datasets/fashion-mnist ] || [ "$data_format" != idx ]; then needs_data=false; fi
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
    echo "roundhouse: missing Debian packages: ${missing[*]}; install them with:  sudo apt-get install ${missing[*]}" >&2
    echo "  (without the dataset package, pass data.dir=FOLDER with the four Fashion-MNIST IDX files)" >&2
    exit 2
  fi
fi
echo "roundhouse: installing ${missing[*]} ..." >&2
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}"; } >"$log" 2>&1; then
  echo "roundhouse: could not install ${missing[*]} with apt-get: $(grep -E '^(E|Err):' "$log" | head -1)" >&2
  echo "  install them by hand (sudo apt-get install ${missing[*]}) and run again" >&2
  exit 2
fi
