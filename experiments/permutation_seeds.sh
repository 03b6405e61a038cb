#!/usr/bin/env bash
# Permutation amplification (no baselines) on several seeds, warm and cold rounds, all at once on
# one GPU (each process takes at most 10% of its memory); prints each run's final accuracy:
#   PYTHONPATH=. bash experiments/permutation_seeds.sh OUT_DIR "0 1 2 3" [more flags]
# On the 2-core CPU run the same `python -m amplify.main` commands one or two at a time instead.
set -u
out=${1:?usage: permutation_seeds.sh OUT_DIR "SEEDS" [FLAGS]}; seeds=${2:-"0 1 2 3"}
shift $(( $# < 2 ? $# : 2 ))
mkdir -p "$out"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false XLA_PYTHON_CLIENT_MEM_FRACTION=0.1
for s in $seeds; do
  for warm in true false; do
    python3 -m amplify.main --task=permutation --baselines=false --seed="$s" --warm_start=$warm \
      --workdir="$out/warm_$warm-seed_$s" "$@" > "$out/warm_$warm-seed_$s.log" 2>&1 &
  done
done
wait
for d in "$out"/warm_*-seed_*/; do
  echo "$(basename "$d") $(python3 -m amplify.inspect --workdir="$d" | grep -o '^final [0-9.]\+')"
done
