#!/usr/bin/env bash
# Fast Mamba path on the lent H200: GPU correctness tests, the kernel sweep, then the benchmarks
# (issue: Mamba at hardware speed). Writes records and logs to $OUT.
set -uo pipefail
mkdir -p /tmp/k && { [ -d /tmp/k/site ] || cat .gpu/site.tgz.part-* | tar xz -C /tmp/k; }
export PYTHONPATH=/tmp/k/site:$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_mamba_fast.py tests/test_gpu_pair.py 2>&1 | tee $OUT/gpu_tests.log \
  | grep -E "passed|failed|^E |relative" | tail -8
python3 scripts/tune_mamba_kernels.py ${TUNE_ARGS:---decode-only} 2>&1 | grep -v -i warn \
  | tee $OUT/h200-mamba-kernel-tuning.txt | grep -E "tok/s|prefill" | cut -c1-90
B="python3 -m comparer.bench --random-weights --engine fast --sides left"
$B --preset paper --contexts 512,2048,8192,32768,131072 --new-tokens 128 --repeats 3 --out $OUT/h200-paper-mamba-fast.json 2>&1 | grep -v it/s | tail -7
$B --preset small --contexts 512,2048,8192,32768,131072 --new-tokens 128 --repeats 3 --out $OUT/h200-small-mamba-fast.json 2>&1 | grep -v it/s | tail -6
$B --preset paper --contexts 131072,524288,1048576 --new-tokens 16 --repeats 1 --out $OUT/h200-paper-mamba-fast-long.json 2>&1 | grep -v it/s | tail -4
