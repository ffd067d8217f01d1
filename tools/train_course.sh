#!/usr/bin/env bash
# The flow-matching models at the course's epochs (Part B 2 and 2.6): hours of CPU, so in the background, niced, each
# step resumable (run it again after an interruption: finished runs are skipped, interrupted ones resume).
#
#   nohup tools/train_course.sh /work/course-runs > /work/course-runs/train.log 2>&1 &
#   python tools/export_bundled.py --runs /work/course-runs flow_class flow_class_constant flow_time   # afterwards
#
# Each step is its own process, so a constant lr set in tools/train_bundled.py after the sweep is the one trained.
set -euo pipefail
runs=${1:?give a runs folder outside the work tree}
cd "$(dirname "$0")/.."
threads=${THREADS:-2}
device=${DEVICE:-cpu}  # DEVICE=cuda where a GPU is lent: minutes instead of hours
nice -n 19 python tools/sweep_lr.py --threads "$threads" --runs "$runs" --device "$device"
for name in flow_class flow_class_constant flow_time; do
    nice -n 19 python tools/train_bundled.py --threads "$threads" --runs "$runs" --device "$device" "$name"
done
