#!/usr/bin/env bash
# Every device check in one script (305 s on an H100; results/gpu/README.md):
#   PYTHONPATH=. bash experiments/gpu_checks.sh OUT_DIR
# Seeds: 0. Machine: a lent GPU. 1. the whole test suite on that machine's Python / JAX / Flax, on
# its CPU, beside the rest; 2. the paper-size permutation preset on the GPU, time-boxed at 400 s,
# with its size curriculum and, beside it on the same GPU, without (the 2018 authors' ablation;
# neither trains the baselines):
# whatever rounds finish are in OUT_DIR/{metrics,off_metrics}.jsonl; 3. the amplification
# benchmark on the GPU (OUT_DIR/results/bench_amplify/); 4. z* on disk against memory on the GPU,
# where each look-up's host round trip also crosses to the device (OUT_DIR/results/bench_zstore/,
# about 2 minutes more). Then copy what it measured into experiments/results/.
# Or, as its second argument, `size_curve [PRESETS [SECONDS]]`: experiments/size_curve.py alone on
# the GPU (default: every paper-size preset, 600 s a run, 100 minutes in all; one preset at
# 240 s fits a command's 10 minutes), its results in OUT_DIR/results/size_curve/.
set -u
out=${1:?usage: gpu_checks.sh OUT_DIR [size_curve [PRESETS [SECONDS]]]}
mkdir -p "$out"
# dependencies the device image lacks travel as wheels in .whl (carry it): tensorboardX,
# ml_collections (and PyYAML, which it needs, where the image lacks it), made here by
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl tensorboardX==2.6.5 ml_collections pyyaml
if ls .whl/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONUNBUFFERED=1
if [ "${2:-}" = size_curve ]; then
  python3 experiments/size_curve.py ${3:+--preset=$3} --time_box="${4:-600}" \
    --root=/tmp/size_curve --results="$out/results" > "$out/size_curve.txt" 2>&1
  echo "exit $?" >> "$out/size_curve.txt"
  exit 0
fi
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  python3 -c "import jax, flax, optax; print(jax.__version__, flax.__version__, optax.__version__, jax.devices())"
} > "$out/device.txt" 2>&1
JAX_PLATFORMS=cpu timeout 420 python3 -m pytest -o addopts="" -q -p no:cacheprovider tests > "$out/tests.txt" 2>&1 &
tests=$!
rm -rf /tmp/paper /tmp/paper_off  # a rerun on a warm machine starts afresh
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.4  # two runs share the GPU
timeout 400 python3 -m amplify.main --preset=permutation_paper --config.curriculum.on=false \
  --baselines=false --workdir=/tmp/paper_off > "$out/paper_off_log.txt" 2>&1 &
off=$!
start=$(date +%s)
timeout 400 python3 -m amplify.main --preset=permutation_paper --baselines=false \
  --workdir=/tmp/paper > "$out/paper_log.txt" 2>&1
echo "exit $? after $(( $(date +%s) - start ))s" >> "$out/paper_log.txt"
wait $off
unset XLA_PYTHON_CLIENT_MEM_FRACTION
python3 -m amplify.views.report --workdir=/tmp/paper > "$out/paper.txt" 2>&1
python3 -m amplify.views.report --workdir=/tmp/paper_off > "$out/paper_off.txt" 2>&1
cp /tmp/paper/metrics.jsonl /tmp/paper/summary.json "$out/" 2>/dev/null
cp /tmp/paper_off/metrics.jsonl "$out/off_metrics.jsonl" 2>/dev/null
timeout 60 python3 experiments/bench_amplify.py --batch=1024 --results="$out/results" > "$out/bench.txt" 2>&1
timeout 120 python3 experiments/bench_zstore.py --entities=1000000 --steps=20 --repeats=1 \
  --results="$out/results" > "$out/zstore.txt" 2>&1
wait $tests
echo "tests exit $?" >> "$out/tests.txt"
true
