#!/usr/bin/env bash
# Fast Transformer path on the lent H200 (issue: The Transformer at hardware speed): GPU tests of
# both fast engines, Pythia-6.9B benchmark (random weights at the exact config, fp16), and a
# prefill/decode kernel profile. Writes records and logs to $OUT.
set -uo pipefail
mkdir -p /tmp/k && { [ -d /tmp/k/site ] || cat .gpu/site.tgz.part-* | tar xz -C /tmp/k; }
export PYTHONPATH=/tmp/k/site:$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_transformer_fast.py tests/test_gpu_mamba_fast.py 2>&1 \
  | tee $OUT/h200-gpu-tests-fast.log | grep -E "passed|failed|error|vs fp32|Triton binaries|^FAILED|Error" | tail -15
python3 -m comparer.bench --random-weights --engine fast --sides right --preset paper --contexts 512,8192,32768 \
  --new-tokens 128 --repeats 3 --out $OUT/h200-paper-pythia-fast.json 2>&1 | grep -v "it/s\]" | tail -8
python3 scripts/profile_fast.py --config pythia-6.9b --context 32768 --backends flash,cudnn,efficient \
  > $OUT/profile-pythia.txt 2>&1; grep -E "prefill|comparer" $OUT/profile-pythia.txt
