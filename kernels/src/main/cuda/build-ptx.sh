#!/usr/bin/env bash
# Compiles every kernels/src/main/cuda/*.cu to PTX into the folder given (the jar's
# io/roundhouse/kernels/cuda/) when nvcc is on the PATH (or in /usr/local/cuda/bin). Without nvcc
# it says so and builds nothing: the build still succeeds, and the CUDA backend reports that its
# kernels were not built. PTX targets compute_80 (Ampere and newer; the driver JIT-compiles it for
# the GPU it runs on). A .ptx newer than every source is kept.
set -euo pipefail
src="$(cd "$(dirname "$0")" && pwd)"
out="$1"
nvcc="$(command -v nvcc || true)"
if [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
  nvcc=/usr/local/cuda/bin/nvcc
fi
if [ -z "$nvcc" ]; then
  echo "[cuda] nvcc not found on the PATH: the CUDA kernels are not built (the CUDA backend will say so)"
  exit 0
fi
mkdir -p "$out"
newest_header=$(find "$src" -name '*.cuh' -printf '%T@\n' | sort -n | tail -1)
built=0
for cu in "$src"/*.cu; do
  name="$(basename "$cu" .cu)"
  ptx="$out/$name.ptx"
  if [ -f "$ptx" ] && [ "$ptx" -nt "$cu" ] && \
     [ "$(stat -c %Y "$ptx")" -ge "${newest_header%.*}" ]; then
    continue
  fi
  "$nvcc" -ptx -arch=compute_80 -O3 -lineinfo -o "$ptx.tmp" "$cu"
  mv "$ptx.tmp" "$ptx"
  built=$((built + 1))
done
ls "$src"/*.cu | xargs -n1 basename | sed 's/\.cu$//' > "$out/modules.txt"
"$nvcc" --version | tail -1 > "$out/nvcc.txt"
echo "[cuda] $(wc -l < "$out/modules.txt") kernel modules in $out ($built compiled with $("$nvcc" --version | grep -o 'release [0-9.]*'))"
