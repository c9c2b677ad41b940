#!/usr/bin/env bash
# Run the scaling benchmark on the lent H200 (see DEVELOPERS.md / shared/gpu/README.md).
# Usage on the device: bash scripts/gpu_bench.sh start|collect
# 'start' unpacks the mamba-ssm kit, launches the sweeps in their own session (they outlive the
# call), waits up to WAIT_S and copies finished records to $OUT; 'collect' waits for the rest.
set -uo pipefail
RES=/tmp/comparer-bench
WAIT_S=${WAIT_S:-540}
mkdir -p /tmp/k "$RES"
[ -d /tmp/k/site ] || cat .gpu/site.tgz.part-* | tar xz -C /tmp/k
export PYTHONPATH=/tmp/k/site:$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
if [ "${1:-start}" = start ]; then
  python3 -c "import mamba_ssm, causal_conv1d, torch; print('kernels ok', torch.__version__, torch.cuda.get_device_name())"
  nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm --format=csv
  setsid bash -c "
    python3 -m comparer.bench --engine hf --preset paper --random-weights --contexts ${PAPER_CONTEXTS:-512,2048,8192,32768,131072} \
      --new-tokens 128 --repeats ${REPEATS:-3} --out $RES/h200-paper-random.json > $RES/paper.log 2>&1
    python3 -m comparer.bench --engine hf --preset small --random-weights --contexts ${SMALL_CONTEXTS:-512,2048,8192,32768,131072} \
      --new-tokens 128 --repeats ${REPEATS:-3} --out $RES/h200-small-random.json > $RES/small.log 2>&1
    touch $RES/ALL_DONE" < /dev/null > /dev/null 2>&1 &
fi
for ((i = 0; i < WAIT_S; i += 10)); do [ -f $RES/ALL_DONE ] && break; sleep 10; done
cp $RES/*.json $RES/*.log "$OUT"/ 2>/dev/null
tail -c 3000 $RES/paper.log; echo; tail -c 3000 $RES/small.log 2>/dev/null
ls -la $RES
