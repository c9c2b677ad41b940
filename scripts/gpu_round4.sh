#!/usr/bin/env bash
# Fourth H200 round: the demo pair trained with the same learning-rate sweep for both, unpacked into
# assets/models here, then the GPU tests of both fast engines (the fp16 Mamba check uses it).
set -uo pipefail
mkdir -p /tmp/k && { [ -d /tmp/k/site ] || cat .gpu/site.tgz.part-* | tar xz -C /tmp/k; }
export PYTHONPATH=/tmp/k/site:$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 scripts/train_demo_pair.py --out /tmp/models 2>&1 | grep -v Warning | tee $OUT/train.log \
  | grep -v "step\|Writing" | cut -c1-300
for m in demo-mamba demo-llama; do tar -C /tmp/models -cf $OUT/$m.tar $m; rm -rf assets/models/$m; cp -r /tmp/models/$m assets/models/; done
python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_mamba_fast.py tests/test_gpu_transformer_fast.py 2>&1 \
  | tee $OUT/h200-gpu-tests.log | grep -E "passed|failed|vs fp32|Triton binaries|^FAILED|Error|relative" | tail -12
