#!/usr/bin/env bash
# The fair race on the lent H200: the GPU pair tests, then the race-fidelity record of the paper pair
# (random weights at the exact configs, std 0.02 so fp16 stays finite, fp16, batch 1, 256 new tokens,
# 5 comparisons per mode and prompt length, each model also measured alone in the same run).
set -uo pipefail
mkdir -p /tmp/k && { [ -d /tmp/k/site ] || cat .gpu/site.tgz.part-* | tar xz -C /tmp/k; }
export PYTHONPATH=/tmp/k/site:$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -m pytest -q -p no:cacheprovider tests/test_gpu_pair.py 2>&1 | tee $OUT/h200-gpu-tests-race.log | tail -15
python3 scripts/race_fidelity.py --preset paper --random-weights --init-std 0.02 --device cuda \
  --prompts 500,3000 --new-tokens 256 --repeats 5 --out $OUT/h200-race-fidelity.json 2>&1 | grep -v "it/s\]" | tail -12
