#!/usr/bin/env bash
# Runs on the GPU machine (no Java installed, no network), from the folder scripts/gpu-check
# prepared: the CUDA op tests against the CPU backend, then `roundhouse bench cuda` and its PyTorch
# baseline. Everything goes to $OUT (or ./out).
set -u
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"
mkdir -p "$out"
java="$here/jre/bin/java"
flags=(--add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED)
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
echo "== CUDA op tests"
"$java" "${flags[@]}" -Droundhouse.cuda.sync=true -jar "$here/junit-console.jar" execute --disable-banner \
  --class-path "$here/roundhouse.jar:$here/kernels-tests" \
  --select-class io.roundhouse.kernels.CudaOpsTest --details=tree --reports-dir "$out/junit" \
  > "$out/cuda-op-tests.txt" 2>&1
echo "op tests: exit $?"; grep -E "tests (successful|failed|skipped)" "$out/cuda-op-tests.txt"
echo "== bench cuda"
"$java" "${flags[@]}" -cp "$here/roundhouse.jar" io.roundhouse.driver.RoundhouseCli \
  bench cuda --json "$out/bench-cuda.json" > "$out/bench-cuda.txt" 2>&1
echo "bench: exit $?"; cat "$out/bench-cuda.txt" | grep -v INFO
echo "== torch"
python3 "$here/torch_bench.py" "$out/torch.json" > "$out/torch.txt" 2>&1
echo "torch: exit $?"; cat "$out/torch.txt"
