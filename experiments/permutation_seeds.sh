#!/usr/bin/env bash
# Permutation amplification (no baselines) over seeds x variants, all at once on one GPU (each
# process takes at most MEM_FRACTION of its memory, default 5%; 24 runs took 327 s on an H100):
#   PYTHONPATH=. bash experiments/permutation_seeds.sh OUT_DIR "0 1 2 3" "" "--replay_size=0"
# Each argument after the seeds is one variant: a string of flags added to the preset ("" is the
# preset itself; "--baselines=true" adds the baselines). Prints one line per run: final accuracy,
# steps used, baselines, and per round the policy's accuracy and the largest k it was competent at
# (what H^A may ask it next round). On the 2-core CPU run the same `python -m amplify.main`
# commands one or two at a time instead.
set -u
out=${1:?usage: permutation_seeds.sh OUT_DIR "SEEDS" VARIANT_FLAGS...}; seeds=${2:-"0 1 2 3"}
shift $(( $# < 2 ? $# : 2 ))
[ $# -eq 0 ] && set -- ""
mkdir -p "$out"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export XLA_PYTHON_CLIENT_MEM_FRACTION=${MEM_FRACTION:-0.05}
v=0
for flags in "$@"; do
  echo "variant $v: ${flags:-(the preset)}" | tee -a "$out/variants.txt"
  for s in $seeds; do
    # shellcheck disable=SC2086  # a variant is a list of flags
    python3 -m amplify.main --task=permutation --baselines=false --seed="$s" $flags \
      --workdir="$out/v$v-seed_$s" > "$out/v$v-seed_$s.log" 2>&1 &
  done
  v=$((v + 1))
done
wait
python3 -c '
import glob, json, os, sys
for d in sorted(glob.glob(os.path.join(sys.argv[1], "v*-seed_*/"))):
  rows = [json.loads(line) for line in open(os.path.join(d, "metrics.jsonl"))]
  evals = [r for r in rows if r["phase"] == "eval"]
  base = {r["baseline"]: round(r["accuracy"], 3) for r in rows if r["phase"] == "baseline"}
  print(os.path.basename(d.rstrip("/")),
        "final", round(evals[-1]["policy_accuracy"], 3) if evals else None,
        "steps", sum(r["steps"] for r in rows if r["phase"] == "distill"), base or "",
        "accuracy", [round(r["policy_accuracy"], 2) for r in evals],
        "competent up to k", [max(r["competent_difficulties"], default=0) for r in evals])
' "$out"
