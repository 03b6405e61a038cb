#!/usr/bin/env bash
# Every GPU check in one script, for a lent device machine (see BUILD_NOTES.md):
#   PYTHONPATH=. bash experiments/gpu_checks.sh OUT_DIR
# 1. the fast tests on that machine's Python / JAX versions; 2. the amplification benchmark;
# 3. the default config and the round-design variants (accuracy only, baselines in the default);
# 4. the paper-size preset, time-boxed. Results land in OUT_DIR.
set -u
out=${1:?usage: gpu_checks.sh OUT_DIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$out/device.txt" 2>&1
python3 -c "import jax, flax, optax; print(jax.__version__, flax.__version__, optax.__version__, jax.devices())" >> "$out/device.txt" 2>&1
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_permutation.py tests/test_isolation.py > "$out/tests.txt" 2>&1
{ timeout 120 python3 experiments/bench_amplify.py --batch=1024
  timeout 120 python3 experiments/bench_amplify.py --batch=16384 --repeats=3; } > "$out/bench.txt" 2>&1
variants=(
  "default|"
  "no_replay|--replay_size=0 --baselines=false"
  "cold_start|--warm_start=false --baselines=false"
  "no_idk_cap|--idk_share=1 --baselines=false"
  "no_augment|--augment=false --baselines=false"
)
for v in "${variants[@]}"; do
  name=${v%%|*}; flags=${v#*|}
  timeout 150 python3 -m amplify.main --workdir="/tmp/runs/$name" $flags > /dev/null 2>&1
  { echo "== $name: $flags"; python3 -m amplify.inspect --workdir="/tmp/runs/$name"; } >> "$out/variants.txt" 2>&1
done
timeout 200 python3 -m amplify.main --preset=paper --workdir=/tmp/runs/paper > "$out/paper_log.txt" 2>&1
python3 -m amplify.inspect --workdir=/tmp/runs/paper > "$out/paper.txt" 2>&1
cp /tmp/runs/paper/metrics.jsonl "$out/paper_metrics.jsonl" 2>/dev/null
true
