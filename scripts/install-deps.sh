#!/usr/bin/env bash
# What Roundhouse needs from the system, on Debian/Ubuntu:
#   libopenblas0-pthread   the BLAS the CPU backend calls (without it: a pure-Java BLAS, ~10x slower)
#   dataset-fashion-mnist  the dataset of the default job (/usr/share/datasets/fashion-mnist)
#   bible-kjv              the default language-model corpus (model.kind=lm, data.text=kjv)
# Usage: scripts/install-deps.sh            install them all (needs root or sudo)
#        scripts/install-deps.sh --check-or-install [roundhouse args]
#                                           used by scripts/roundhouse: installs what is missing when
#                                           it can, otherwise says how and stops before a train job
set -euo pipefail
packages=(libopenblas0-pthread dataset-fashion-mnist bible-kjv)

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
    "train "*|"spark "*|"bench train"|"bench lm"|"bench stn"|"bench routers") needs_data=true ;;
  esac
  needs_text="$needs_data"
  data_dir=/usr/share/datasets/fashion-mnist
  data_format=idx
  model_kind=classifier
  data_text=kjv
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
    v="$(sed -n 's/^[[:space:]]*model\.kind[[:space:]]*=[[:space:]]*//p' "$conf" | tail -1)"; [ -n "$v" ] && model_kind="$v"
    v="$(sed -n 's/^[[:space:]]*data\.text[[:space:]]*=[[:space:]]*//p' "$conf" | tail -1)"; [ -n "$v" ] && data_text="$v"
  fi
  for a in "$@"; do
    case "$a" in
      data.dir=*) data_dir="${a#data.dir=}" ;; data.format=*) data_format="${a#data.format=}" ;;
      model.kind=*) model_kind="${a#model.kind=}" ;; data.text=*) data_text="${a#data.text=}" ;;
    esac
  done
  model_kind="${model_kind%"${model_kind##*[![:space:]]}"}"
  data_text="${data_text%"${data_text##*[![:space:]]}"}"
  if [ "$model_kind" = lm ]; then needs_data=false; fi
  if [ "$model_kind" != lm ] || [ "$data_text" != kjv ]; then needs_text=false; fi
  data_dir="${data_dir%"${data_dir##*[![:space:]]}"}"
  data_dir="${data_dir%/}"
  data_format="${data_format%"${data_format##*[![:space:]]}"}"
  if [ "$data_dir" != /usr/share/datasets/fashion-mnist ] || [ "$data_format" != idx ]; then needs_data=false; fi
  if ! command -v dpkg >/dev/null 2>&1; then exit 0; fi   # not Debian: the job itself reports what is missing
  want=()
  for p in "${missing[@]}"; do
    if [ "$p" = dataset-fashion-mnist ] && [ "$needs_data" = false ]; then continue; fi
    if [ "$p" = bible-kjv ] && [ "$needs_text" = false ]; then continue; fi
    want+=("$p")
  done
  [ ${#want[@]} -eq 0 ] && exit 0
  missing=("${want[@]}")
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
    echo "roundhouse: missing Debian packages: ${missing[*]}; install them with:  sudo apt-get install ${missing[*]}" >&2
    echo "  (without them, pass data.dir=FOLDER with the four Fashion-MNIST IDX files, or data.text=FILE)" >&2
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
