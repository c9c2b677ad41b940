#!/usr/bin/env bash
# Final H200 round: the split-model test, then the fast engines' benchmarks (random weights at the
# exact configs, fp16, batch 1, 128 new tokens, 3 repeats).
set -uo pipefail
mkdir -p /tmp/k && { [ -d /tmp/k/site ] || cat .gpu/site.tgz.part-* | tar xz -C /tmp/k; }
export PYTHONPATH=/tmp/k/site:$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_transformer_fast.py -k split 2>&1 | tail -2
B="python3 -m comparer.bench --random-weights --engine fast --new-tokens 128 --repeats 3"
$B --preset paper --sides right --contexts 512,2048,8192,32768,131072 --out $OUT/h200-paper-pythia-fast.json 2>&1 \
  | grep -v "it/s\]" | tail -6 | cut -c1-100
$B --preset small --sides left,right --contexts 512,2048,8192,32768 --out $OUT/h200-small-fast.json 2>&1 \
  | grep -v "it/s\]" | tail -10 | cut -c1-100
