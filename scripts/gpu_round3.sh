#!/usr/bin/env bash
# Third H200 round: fast Transformer GPU tests and the Pythia-6.9B benchmark after tuning.
set -uo pipefail
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_transformer_fast.py 2>&1 \
  | tee $OUT/h200-gpu-tests-transformer.log | grep -E "passed|failed|vs fp32|Triton binaries|^FAILED|Error" | tail -8
python3 -m comparer.bench --random-weights --engine fast --sides right --preset paper --contexts 512,8192,32768 \
  --new-tokens 128 --repeats 3 --out $OUT/h200-paper-pythia-fast.json 2>&1 | grep -v "it/s\]" | tail -4 | cut -c1-90
python3 scripts/profile_fast.py --config pythia-6.9b --context 8192 > $OUT/profile-pythia.txt 2>&1
