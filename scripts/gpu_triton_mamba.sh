#!/usr/bin/env bash
# Mamba on Triton alone (issue: Mamba at full speed with nothing compiled) on the lent H200: the GPU tests
# (Triton-only greedy tokens, Triton vs mamba-ssm, every kernel built for sm_120), the scan sweep at 32K,
# then the same benchmark with the kit (mamba-ssm + causal-conv1d) and without it, in one session.
# Writes logs and records to $OUT. STEPS picks parts: tests,sweep,bench (default all).
set -uo pipefail
STEPS=${STEPS:-tests,sweep,bench}
mkdir -p /tmp/k && { [ -d /tmp/k/site ] || cat .gpu/site.tgz.part-* | tar xz -C /tmp/k; }
KIT=/tmp/k/site
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee $OUT/gpu.txt
python3 -c "import torch, triton, transformers, sys; print(sys.version.split()[0], torch.__version__, triton.__version__, transformers.__version__)" | tee -a $OUT/gpu.txt
if [[ $STEPS == *tests* ]]; then
  PYTHONPATH=$KIT:$PYTHONPATH python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_mamba_triton.py \
    tests/test_gpu_mamba_fast.py 2>&1 | tee $OUT/h200-gpu-tests-triton.log | grep -E "passed|failed|^E |relative|Error" | tail -12
fi
if [[ $STEPS == *sweep* ]]; then
  PYTHONPATH=$KIT:$PYTHONPATH python3 scripts/tune_mamba_kernels.py --configs mamba-2.8b --scan --context 32768 2>&1 \
    | grep -v -i warn | tee $OUT/h200-mamba-scan-tuning.txt | grep -E "prefill|best" | cut -c1-150
fi
if [[ $STEPS == *bench* ]]; then
  B="python3 -m comparer.bench --random-weights --init-std 0.02 --engine auto --sides left --new-tokens 128 --repeats 3"
  for preset in paper small; do
    PYTHONPATH=$KIT:$PYTHONPATH $B --preset $preset --contexts 512,2048,8192,32768 --out $OUT/h200-$preset-mamba-kit.json 2>&1 | grep -v it/s | tail -6
    PYTHONPATH=$(echo $PYTHONPATH | sed "s#$KIT:##") $B --preset $preset --contexts 512,2048,8192,32768 --out $OUT/h200-$preset-mamba-triton.json 2>&1 | grep -v it/s | tail -6
  done
fi
