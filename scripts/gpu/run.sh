#!/usr/bin/env bash
# Runs on the GPU machine (no Java installed, no network), from the folder scripts/gpu-check
# prepared: the CUDA op tests against the CPU backend, `roundhouse bench cuda` and its PyTorch
# baseline, then the model trained end to end on a slice of Fashion-MNIST on the CPU and on the GPU
# (fp32 and bf16), then the language model (with tied embeddings, and with a Self-Tuning Network)
# on the first 400 KB of the King James Bible on both. Everything goes to $OUT (or ./out).
set -u
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"
mkdir -p "$out"
java="$here/jre/bin/java"
flags=(--add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED)
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
# Every section has a time limit, so a hung GPU call cannot eat the device tool's 10-minute command
# (exit 124 means the limit was hit; what the section wrote so far is in $OUT).
command -v timeout > /dev/null || timeout() { shift; "$@"; }
echo "== CUDA op tests"
timeout 150 "$java" "${flags[@]}" -Droundhouse.cuda.sync=true -jar "$here/junit-console.jar" execute --disable-banner \
  --class-path "$here/roundhouse.jar:$here/kernels-tests" \
  --select-class io.roundhouse.kernels.cuda.CudaOpsTest --details=tree --reports-dir "$out/junit" \
  > "$out/cuda-op-tests.txt" 2>&1
echo "op tests: exit $?"; grep -E "tests (successful|failed|skipped)" "$out/cuda-op-tests.txt"
echo "== bench cuda"
timeout 90 "$java" "${flags[@]}" -cp "$here/roundhouse.jar" io.roundhouse.driver.RoundhouseCli \
  bench cuda --json "$out/bench-cuda.json" > "$out/bench-cuda.txt" 2>&1
echo "bench: exit $?"; cat "$out/bench-cuda.txt" | grep -v INFO
echo "== torch"
timeout 90 python3 "$here/torch_bench.py" "$out/torch.json" > "$out/torch.txt" 2>&1
echo "torch: exit $?"; cat "$out/torch.txt"
echo "== ours against torch"
python3 "$here/compare.py" "$out/bench-cuda.json" "$out/torch.json" > "$out/table.md" 2>&1
cat "$out/table.md"
echo "== training: 3,000 Fashion-MNIST images, 6 epochs of batch 100, the default model"
for run in "cpu fp32" "cuda fp32" "cuda bf16" "cpu bf16" "auto fp32"; do
  set -- $run
  timeout 50 "$java" "${flags[@]}" -cp "$here/roundhouse.jar" io.roundhouse.driver.RoundhouseCli train \
    -c "$here/fashion-mnist-moe.conf" data.dir="$here/data" data.validationExamples=500 train.epochs=6 \
    train.batchSize=100 train.warmupSteps=20 train.evalBatchSize=500 log.everySteps=50 backend="$1" \
    model.precision="$2" output.dir="$out/runs/$1-$2" > "$out/train-$1-$2.txt" 2>&1
  rc=$?
  echo "train $1 $2: exit $rc, $(grep -E '^test:' "$out/train-$1-$2.txt"), digest \
$(grep -ho '"parameterDigest" : "[0-9a-f]\{12\}' "$out"/runs/$1-$2/*/summary.json 2>/dev/null | cut -d'"' -f4)"
  grep -E "Backends - |backend check" "$out/train-$1-$2.txt" | head -3
  if [ "$rc" -eq 0 ]; then grep -E "step .*/" "$out/train-$1-$2.txt" | tail -2; else tail -5 "$out/train-$1-$2.txt"; fi
done
echo "== NiNformer: the same 3,000 images, 60 steps (patches 7x7, MoE every other block), CPU against GPU"
for run in "cpu fp32" "cuda fp32" "cuda bf16"; do
  set -- $run
  timeout 60 "$java" "${flags[@]}" -cp "$here/roundhouse.jar" io.roundhouse.driver.RoundhouseCli train \
    -c "$here/fashion-mnist-moe.conf" model.kind=ninformer model.patchSize=7 model.dim=64 model.blocks=2 \
    model.moeEvery=2 model.expertHidden=128 model.capacityFactor=0 data.dir="$here/data" \
    data.validationExamples=500 train.maxSteps=60 train.batchSize=100 train.warmupSteps=10 log.everySteps=20 \
    checkpoint.everySteps=0 backend="$1" model.precision="$2" output.dir="$out/runs/nin-$1-$2" \
    > "$out/nin-$1-$2.txt" 2>&1
  rc=$?
  echo "ninformer $1 $2: exit $rc, $(grep -E '^test:' "$out/nin-$1-$2.txt")"
  if [ "$rc" -eq 0 ]; then grep -E "step .*/" "$out/nin-$1-$2.txt" | tail -2; else tail -5 "$out/nin-$1-$2.txt"; fi
done
if [ -f "$here/kjv-head.txt" ]; then
  echo "== language model: 400 KB of the King James Bible, 60 steps of the default LM (then tied, then STN)"
  for run in "cpu plain" "cuda plain" "cuda tied" "cuda stn" "cpu stn"; do
    set -- $run
    case "$2" in
      plain) extra=() ;;
      tied) extra=(model.tieEmbeddings=on) ;;
      stn) extra=(stn.tune=dropout.block,dropout.attention model.dropout.block=0.05 model.dropout.attention=0.05
                  stn.layers=embed,attention,router,experts,head stn.warmupSteps=20) ;;
    esac
    timeout 90 "$java" "${flags[@]}" -cp "$here/roundhouse.jar" io.roundhouse.driver.RoundhouseCli train \
      -c "$here/kjv-moe-lm.conf" data.text="$here/kjv-head.txt" train.maxSteps=60 log.everySteps=20 \
      checkpoint.everySteps=0 backend="$1" "${extra[@]}" output.dir="$out/runs/lm-$1-$2" > "$out/lm-$1-$2.txt" 2>&1
    rc=$?
    echo "lm $1 $2: exit $rc, $(grep -E '^validation:' "$out/lm-$1-$2.txt" | tail -1)"
    if [ "$rc" -eq 0 ]; then grep -E "step .*/" "$out/lm-$1-$2.txt" | tail -3; else tail -5 "$out/lm-$1-$2.txt"; fi
  done
fi
