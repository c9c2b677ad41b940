#!/usr/bin/env bash
# Train the demo pair on the lent H200 (same learning-rate sweep for both). The folders are written
# into assets/models here (for scripts/gpu_tests.sh in the same call) and come back as one tar per
# model in $OUT (a call returns at most 8 files); unpack them into assets/models.
set -uo pipefail
mkdir -p /tmp/k && { [ -d /tmp/k/site ] || cat .gpu/site.tgz.part-* | tar xz -C /tmp/k; }
export PYTHONPATH=/tmp/k/site:$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 scripts/train_demo_pair.py --out /tmp/models 2>&1 | grep -v Warning | tee $OUT/train.log \
  | grep -v "step\|Writing" | cut -c1-300
mkdir -p assets/models
for m in demo-mamba demo-llama; do
  tar -C /tmp/models -cf $OUT/$m.tar $m; rm -rf assets/models/$m; cp -r /tmp/models/$m assets/models/
done
