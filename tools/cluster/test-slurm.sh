#!/usr/bin/env bash
# Runs deploy/slurm's scripts on a real one-node Slurm (tools/cluster/slurm-up.sh)
# and checks that a split run equals one plain run:
#
#   (a) preprocess.sbatch as a 3-task array over the bundled sample, against
#       one bin/kediff preprocess of the same input: every parquet file byte
#       for byte, stats and manifest.json up to their timings
#       (compare_preprocess.py says which fields);
#   (b) train-base.sbatch as srun -n 2 (2 ranks, global batch 8 -> 4 each,
#       a few steps of train/configs/tiny.json), against one bin/kediff train
#       base: every model.safetensors tensor within 1e-6 relative (2-norm),
#       loss and grad_norm per step too, and one metrics.jsonl line per step
#       (compare_train.py, which says why the 2-norm);
#   (c) experts.sbatch as a 2-task array (experts 0 and 1 of 2 from (b)'s
#       one-process base), each task srun -n 2, against one bin/kediff train
#       expert per expert, compared as in (b).
#
# Run by go tool task test-cluster (after build and sample-input). Needs root
# (slurmd). Work folder: .cache/cluster-test (KEDIFF_CLUSTER_WORK). The Slurm
# daemons are stopped at the end if this script started them (KEEP_SLURM=1
# keeps them). PARTS="a" runs only (a) (default "a b c"); STEPS (default 3) and
# KEDIFF_TRAIN_RTOL (default 1e-6) tune (b) and (c).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
here=tools/cluster
work=${KEDIFF_CLUSTER_WORK:-$repo/.cache/cluster-test}
parts=${PARTS:-a b c}
steps=${STEPS:-3}
export KEDIFF=$repo/bin/kediff
sample=$repo/out/sample-input

log() { echo "test-slurm: $*" >&2; }
die() { echo "test-slurm: FAIL: $*" >&2; exit 1; }
elapsed() { echo "$(($(date +%s) - $1)) s"; }

[ -x "$KEDIFF" ] || die "no $KEDIFF: run go tool task build (task test-cluster does)"
[ -f "$sample/00003.tar" ] || die "no bundled sample in $sample: run go tool task sample-input"

# Debian's python3 has numpy and yaml from apt; a python3 earlier on PATH
# (pyenv, a venv) may not.
py=${PYTHON:-/usr/bin/python3}
if ! "$py" -c 'import numpy, yaml' 2>/dev/null; then
  log "installing python3-numpy python3-yaml for $py"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-numpy python3-yaml >/dev/null
fi

"$py" "$here/check_manifests.py" "$repo"
for f in deploy/slurm/*.sbatch; do bash -n "$f" || die "$f does not parse"; done

# --- the cluster ---------------------------------------------------------------
slurm_dir=${KEDIFF_SLURM_DIR:-/tmp/kediff-slurm}
started=0
if ! { [ -f "$slurm_dir/run/slurmd.pid" ] && kill -0 "$(cat "$slurm_dir/run/slurmd.pid")" 2>/dev/null; }; then
  started=1
fi
if [ "$started" = 1 ] && [ -z "${KEEP_SLURM:-}" ]; then
  trap '"$repo/$here/slurm-down.sh"' EXIT   # also after a failed start
fi
t0=$(date +%s)
"$here/slurm-up.sh"
log "slurm up in $(elapsed "$t0")"
export SLURM_CONF=$slurm_dir/etc/slurm.conf
# sbatch exports the submitting environment to the job (KEDIFF, KEDIFF_DEVICE,
# SLURM_CONF); stale launcher variables from this shell would confuse the ranks.
unset MASTER_ADDR MASTER_PORT RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE TORCHELASTIC_RUN_ID

rm -rf "$work"
mkdir -p "$work/logs"

# show_logs GLOB: a failed job's output, for the reader of the test log.
show_logs() {
  for f in $1; do
    [ -f "$f" ] || continue
    echo "----- $f" >&2
    tail -n 40 "$f" >&2
  done
}

# --- (a) preprocess: a 3-task array vs one process ------------------------------
if [[ " $parts " == *" a "* ]]; then
  t0=$(date +%s)
  # The sample has 4 shards; 3 workers split them by hash. One CPU per task
  # (2 tasks at a time on a 2-core node), little memory: it is a tiny input.
  if ! sbatch --wait --quiet --array=0-2 --cpus-per-task=1 --mem=1G --time=10:00 \
    --output="$work/logs/preprocess-%A_%a.log" \
    deploy/slurm/preprocess.sbatch "$sample" "$work/preprocess-slurm" pipelines/sample.yaml; then
    show_logs "$work/logs/preprocess-*.log"
    die "(a) the preprocess array failed (logs above, in $work/logs)"
  fi
  n=$(find "$work/logs" -name 'preprocess-*.log' | wc -l)
  [ "$n" = 3 ] || die "(a) want 3 array task logs, found $n"
  # Each task must have taken its own share (worker i of 3, from
  # SLURM_ARRAY_TASK_*), and the shares must cover the input: kediff's
  # "preprocess: plan" log line says which.
  "$py" - "$work"/logs/preprocess-*_*.log <<'PY' || die "(a) the array tasks did not split the input 3 ways"
import json, sys
plans = [json.loads(l) for f in sys.argv[1:] for l in open(f) if '"preprocess: plan"' in l]
got = sorted((p["worker"], p["workers"], p["owned"]) for p in plans)
print("test-slurm: (a) plans (worker, workers, shards owned):", got, file=sys.stderr)
assert [w for w, _, _ in got] == [0, 1, 2] and all(n == 3 for _, n, _ in got), got
assert sum(o for _, _, o in got) == plans[0]["inputs"], got
PY
  log "(a) slurm array: 3 tasks in $(elapsed "$t0")"

  t0=$(date +%s)
  "$KEDIFF" preprocess --input "$sample" --output "$work/preprocess-one" \
    --config pipelines/sample.yaml --quiet --log-format json 2>"$work/logs/preprocess-one.log" ||
    { show_logs "$work/logs/preprocess-one.log"; die "(a) the plain preprocess failed"; }
  log "(a) one process in $(elapsed "$t0")"
  "$py" "$here/compare_preprocess.py" "$work/preprocess-slurm" "$work/preprocess-one" ||
    die "(a) the array's output differs from one process's"
  log "(a) ok"
fi

# --- (b) training: srun -n 2 vs one process -------------------------------------
if [[ " $parts " == *" b "* ]]; then
  data=$work/preprocess-one
  [ -f "$data/manifest.json" ] || { data=$work/data; "$KEDIFF" preprocess --input "$sample" --output "$data" --config pipelines/sample.yaml --quiet 2>/dev/null; }
  config=train/configs/tiny.json   # batch 8: the global batch, 4 per rank
  export KEDIFF_DEVICE=cpu

  t0=$(date +%s)
  "$KEDIFF" train base --data "$data" --config "$config" --out "$work/train-one" \
    --steps "$steps" --quiet 2>"$work/logs/train-one.log" ||
    { show_logs "$work/logs/train-one.log"; die "(b) the one-process training failed"; }
  log "(b) one process, $steps steps in $(elapsed "$t0")"

  t0=$(date +%s)
  # One node, 2 ranks of one CPU each, no GPUs (the script's #SBATCH lines
  # ask for 2 GPU nodes; options here override them).
  if ! sbatch --wait --quiet --nodes=1 --ntasks=2 --ntasks-per-node=2 --cpus-per-task=1 \
    --gpus-per-node=0 --mem=2G --time=10:00 --no-requeue \
    --output="$work/logs/train-base-%j.log" \
    deploy/slurm/train-base.sbatch "$data" "$config" "$work/train-slurm" --steps "$steps" --quiet; then
    show_logs "$work/logs/train-base-*.log"
    die "(b) the srun -n 2 training job failed (log above)"
  fi
  log "(b) srun -n 2, $steps steps in $(elapsed "$t0")"
  show_logs "$work/logs/train-base-*.log"
  "$py" "$here/compare_train.py" "$work/train-one" "$work/train-slurm" --steps "$steps" \
    --rtol "${KEDIFF_TRAIN_RTOL:-1e-6}" ||
    die "(b) the 2-rank training differs from one process's (see above)"
  log "(b) ok"
fi

# --- (c) experts: a 2-task array, each task srun -n 2, vs one process each -------
if [[ " $parts " == *" c "* ]]; then
  base=$work/train-one
  [ -f "$base/model.safetensors" ] || die "(c) needs (b)'s base checkpoint: PARTS=\"b c\""
  data=$work/preprocess-one
  config=train/configs/tiny.json
  export KEDIFF_DEVICE=cpu
  t0=$(date +%s)
  for i in 0 1; do
    "$KEDIFF" train expert "$i" --experts 2 --base "$base" --data "$data" --config "$config" \
      --out "$work/experts-one/expert-$i" --steps "$steps" --quiet 2>"$work/logs/expert-one-$i.log" ||
      { show_logs "$work/logs/expert-one-$i.log"; die "(c) the one-process expert $i failed"; }
  done
  log "(c) one process, experts 0 and 1 of 2, $steps steps each in $(elapsed "$t0")"
  t0=$(date +%s)
  # Two array tasks of 2 ranks each; on 2 cores they run one after the other.
  if ! sbatch --wait --quiet --array=0-1 --nodes=1 --ntasks=2 --ntasks-per-node=2 --cpus-per-task=1 \
    --gpus-per-node=0 --mem=2G --time=10:00 --no-requeue \
    --output="$work/logs/expert-%A_%a.log" \
    deploy/slurm/experts.sbatch "$base" "$data" "$config" "$work/experts-slurm" 2 --steps "$steps" --quiet; then
    show_logs "$work/logs/expert-*_*.log"
    die "(c) the experts array failed (logs above)"
  fi
  log "(c) slurm array of 2 experts x srun -n 2 in $(elapsed "$t0")"
  show_logs "$work/logs/expert-*_*.log"
  for i in 0 1; do
    "$py" "$here/compare_train.py" "$work/experts-one/expert-$i" "$work/experts-slurm/expert-$i" --steps "$steps" \
      --rtol "${KEDIFF_TRAIN_RTOL:-1e-6}" ||
      die "(c) expert $i: the 2-rank training differs from one process's (see above)"
  done
  log "(c) ok"
fi
log "passed: ${parts}"
