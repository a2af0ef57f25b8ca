#!/usr/bin/env bash
# Every GPU check the README reports, in one run on a GPU machine (about 8 minutes on an H100), most
# important first; the last two lines (the presets, the optimizer held equal) have not run on a GPU
# yet.  bash scripts/bench/gpu_suite.sh   (from the repository root; PYTHON=...)
set -u
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
run() { echo "== $*"; timeout 240 "$py" "$@" 2>&1 | grep -v "━\|│\|┃\|─\|^ *$\|GPU available\|TPU available"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
run scripts/bench/gpu_check.py
run scripts/bench/bench_overhead.py --accelerator gpu --epochs 3 --repeats 2
run scripts/bench/bench_overhead.py --accelerator gpu --precision bf16-mixed --epochs 3 --repeats 1 \
  --models "digits CNN" "MLP 4 x 1024, synthetic"
run scripts/bench/bench_overhead.py --accelerator gpu --compile --epochs 3 --repeats 1 \
  --models "MLP 4 x 1024, synthetic"
run scripts/bench/gpu_check.py trainer.precision=bf16-mixed model/net=cnn
run scripts/bench/gpu_check.py '+preset=[gpu_fast,channels_last]' model/net=cnn
run scripts/bench/bench_overhead.py --accelerator gpu --same-optimizer --epochs 3 --repeats 1 --models "digits CNN"
