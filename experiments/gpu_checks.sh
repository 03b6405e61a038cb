#!/usr/bin/env bash
# Every device check in one script (timeouts add to 12 minutes; see BUILD_NOTES.md):
#   PYTHONPATH=. bash experiments/gpu_checks.sh OUT_DIR
# 1. the fast tests on that machine's Python / JAX / Flax; 2. the amplification benchmark;
# 3. the default (lexicon) run; 4. prior fitting at 10^6 entities; 5. the permutation preset's
# amplification (the serial-bit policy on jax 0.11); 6. the paper-size permutation preset,
# time-boxed: whatever rounds finish are in OUT_DIR/paper_metrics.jsonl.
set -u
out=${1:?usage: gpu_checks.sh OUT_DIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  python3 -c "import jax, flax, optax; print(jax.__version__, flax.__version__, optax.__version__, jax.devices())"
} > "$out/device.txt" 2>&1
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_permutation.py \
  tests/test_isolation.py tests/test_lexicon.py tests/test_colored_digits.py > "$out/tests.txt" 2>&1
timeout 60 python3 experiments/bench_amplify.py --batch=1024 > "$out/bench.txt" 2>&1
timeout 120 python3 -m amplify.main --workdir=/tmp/lexicon > "$out/lexicon.txt" 2>&1
timeout 120 python3 experiments/prior_scale.py --num_entities=1000000 > "$out/prior_scale.txt" 2>&1
timeout 150 python3 -m amplify.main --task=permutation --baselines=false --workdir=/tmp/perm \
  > "$out/permutation.txt" 2>&1
start=$(date +%s)
timeout 120 python3 -m amplify.main --preset=permutation_paper --workdir=/tmp/paper > "$out/paper_log.txt" 2>&1
echo "exit $? after $(( $(date +%s) - start ))s" >> "$out/paper_log.txt"
python3 -m amplify.inspect --workdir=/tmp/paper > "$out/paper.txt" 2>&1
cp /tmp/paper/metrics.jsonl "$out/paper_metrics.jsonl" 2>/dev/null
true
