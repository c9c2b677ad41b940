#!/usr/bin/env bash
# Second H200 round: fast Transformer tests + benchmark after the decode-kernel changes, and the
# kernel profile of the fast Mamba engine (prefill at 32K, one decode step).
set -uo pipefail
mkdir -p /tmp/k && { [ -d /tmp/k/site ] || cat .gpu/site.tgz.part-* | tar xz -C /tmp/k; }
export PYTHONPATH=/tmp/k/site:$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_transformer_fast.py 2>&1 \
  | tee $OUT/h200-gpu-tests-transformer.log | grep -E "passed|failed|vs fp32|Triton binaries|^FAILED|Error" | tail -8
python3 -m comparer.bench --random-weights --engine fast --sides right --preset paper --contexts 512,8192,32768 \
  --new-tokens 128 --repeats 3 --out $OUT/h200-paper-pythia-fast.json 2>&1 | grep -v "it/s\]" | tail -4 | cut -c1-90
python3 scripts/profile_fast.py --config pythia-6.9b --context 32768 > $OUT/profile-pythia.txt 2>&1
python3 scripts/profile_fast.py --config mamba-2.8b --context 32768 > $OUT/profile-mamba.txt 2>&1
grep -E "^prefill" $OUT/profile-*.txt
