#!/usr/bin/env bash
# Train the demo pair on the lent H200 (issue: a real, trained demo pair). Each model folder comes
# back as a tar in $OUT (the device returns at most 8 files); unpack into assets/models.
set -uo pipefail
mkdir -p /tmp/k && { [ -d /tmp/k/site ] || cat .gpu/site.tgz.part-* | tar xz -C /tmp/k; }
export PYTHONPATH=/tmp/k/site:$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 scripts/train_demo_pair.py --out /tmp/models --tokens ${TOKENS:-25000000} --max-minutes ${MAX_MIN:-4} \
  2>&1 | grep -v Warning | tee $OUT/train.log | grep -v "step" | cut -c1-400
for m in demo-mamba demo-llama; do tar -C /tmp/models -cf $OUT/$m.tar $m; done
