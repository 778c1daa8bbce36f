#!/usr/bin/env bash
# One GPU lease, fully used (issue 15): the CUDA tests, the fused cells timed under CUDA graphs,
# K searches at once measured, then as many cells of the published selection study as the
# remaining time allows, resumable across leases. Everything is packed into at most 8 files.
#
# The device tool call a session makes (one call; give the machine back after it):
#
#   1. here:   bash benchmarks/gpu_lease.sh prepare
#   2. device: run(command="bash benchmarks/gpu_lease.sh device --budget 540",
#                  carry=[".lease/data", ".lease/work"], timeout_s=590)
#   3. here:   bash benchmarks/gpu_lease.sh collect <files_at of that reply>
#              then give_back, and commit results/benchmarks/*.json and results/ws-study/
#
# The same call serves every lease: stages whose numbers are already on file for the device
# (results/benchmarks/*.json) are skipped, so later leases give their time to the study cells.
#
# Subcommands:
#   prepare   stage the CIFAR-10 JPEG archive and the public tss table into .lease/data (ignored,
#             carried), check that what travels stays under 64 MiB, print the run call
#   device    on the GPU machine (or on the CPU with --tiny): the stages under one time budget
#   collect   unpack a reply's files: results/, logs, and the checkpoints into .lease/work
#   dry-run   prepare, then `device --tiny` twice on the CPU with a collect between (the first
#             run's cells are killed, the second resumes them), checking every returned folder
#
# device options:
#   --budget S        seconds for the whole command (default 540); 60 s of it are kept to pack
#   --stages LIST     auto (default: tests, fused and concurrency unless on file, cells) or a
#                     comma list of setup,tests,fused,concurrency,cells (setup always runs)
#   --cell-jobs N     study cells at once (default 1: only ~2 checkpoints fit a call's carry)
#   --cells-timeout S cap on each study sweep (default: the time left)
#   --tiny            CPU smoke settings (tiny-cpu / synthetic cards, 1-3 steps, K=1,2);
#                     writes under .lease/dry/ only, never into results/
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
DATA=.lease/data
IMAGES=$DATA/cifar10_jpg.tar.gz
TABLE=$DATA/nats_tss_public.csv.gz
RUN_CALL='run(command="bash benchmarks/gpu_lease.sh device --budget 540", '
RUN_CALL+='carry=[".lease/data", ".lease/work"], timeout_s=590)'

say() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

# ------------------------------------------------------------------------------ prepare
prepare() {
  mkdir -p "$DATA" .lease/work
  local shared
  shared=$(PYTHONPATH=$ROOT "$PY" -c \
    'from harness.paths import shared_data_dir as d; print(d() or "")')
  [[ -n $shared ]] || die "no shared data (set HARNESS_SHARED_DATA or place ../shared/data)"
  local src
  for src in "$shared/cifar10-jpg/cifar10_jpg.tar.gz" \
    "$shared/nats-tss-public/nats_tss_public.csv.gz"; do
    [[ -f $src ]] || die "missing $src"
    if ! cmp -s "$src" "$DATA/$(basename "$src")"; then
      cp "$src" "$DATA/" && chmod u+w "$DATA/$(basename "$src")"
      say "staged $(basename "$src") ($(du -h "$src" | cut -f1))"
    fi
  done
  PYTHONPATH=$ROOT "$PY" benchmarks/gpu_lease.py travel --write-plan
  say "next, the device call: $RUN_CALL"
}

# ------------------------------------------------------------------------------ device
left() { echo $((BUDGET - RESERVE - (SECONDS - T0))); }
clock() { printf '%4d s' $((SECONDS - T0)); }
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$LOGS/stages.tsv"; }

# run_stage NAME CAP CMD...: run CMD under timeout min(CAP, time left), log to $LOGS/NAME.log
run_stage() {
  local name=$1 cap=$2 t rc=0 began=$SECONDS
  shift 2
  t=$(left)
  if ((t > cap)); then t=$cap; fi
  STAGE_RC=skipped
  if ((t < MIN_STAGE)); then
    record "$name" skipped 0 "$cap" "no time left"
    say "[$(clock)] $name: skipped, ${t} s left"
    return 0
  fi
  say "[$(clock)] $name: up to ${t} s"
  timeout -k 10 "$t" "$@" >"$LOGS/$name.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$LOGS/$name.pid"  # lets the dry run cut a sweep short at a chosen point
  wait "$pid" || rc=$?
  rm -f "$LOGS/$name.pid"
  local took=$((SECONDS - began)) note=""
  if ((rc == 124 || rc == 137)); then note="timed out"; fi
  if ((rc == 143)); then note="killed"; fi
  record "$name" "$rc" "$took" "$t" "$note"
  if ((rc != 0)); then
    say "  $name exited $rc${note:+ ($note)} after ${took} s; its last lines:"
    if [[ -s $LOGS/$name.log ]]; then
      tail -n 15 "$LOGS/$name.log" | sed 's/^/    | /'
    else
      say "    | (no output)"
    fi
  else
    say "  ok in ${took} s"
  fi
  STAGE_RC=$rc
}

wants() { [[ ,$STAGES, == *,$1,* ]]; }
# needs NAME: the stage's group is wanted and its numbers are not on file (see TODO)
needs() { wants "${1%%-*}" && [[ -n ${TODO[$1]:-} ]]; }

device() {
  BUDGET=540 STAGES=auto CELL_JOBS=1 CELLS_TIMEOUT=0 TINY=0
  while (($#)); do
    case $1 in
      --budget) BUDGET=$2; shift 2 ;;
      --stages) STAGES=$2; shift 2 ;;
      --cell-jobs) CELL_JOBS=$2; shift 2 ;;
      --cells-timeout) CELLS_TIMEOUT=$2; shift 2 ;;
      --tiny) TINY=1; shift ;;
      *) die "unknown device option $1 (see --help)" ;;
    esac
  done
  : "${OUT:?OUT must name the folder whose files come back (the device tool sets it)}"
  if ! [[ $BUDGET =~ ^[0-9]+$ && $CELL_JOBS =~ ^[1-9][0-9]*$ ]]; then
    die "--budget and --cell-jobs take whole numbers"
  fi
  if ((BUDGET > 580)); then say "warning: one device command runs 600 s at most"; fi
  T0=$SECONDS
  STARTED=$(date +%s)
  export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
  HARNESS_HOME=$(mktemp -d "${TMPDIR:-/tmp}/lease-home.XXXXXX")
  export HARNESS_HOME
  if ((TINY)); then
    DEV=cpu GRAPH=() RESERVE=15 MIN_STAGE=3 CELLS_MIN=3 K_LIST=1,2
    BENCH=.lease/dry/benchmarks WORK=.lease/dry/work LOGS=.lease/dry/logs
    STUDY=("cpu-cifar10|darts_v1,gaea|0" "tiny-cpu|darts_v1,gaea,fixed_alpha|0-1")
    STUDY_DIR=.lease/dry/study
    SWEEP_DATA=(--data synthetic --max-steps 6)
    export OMP_NUM_THREADS=1
  else
    # a cell needs ~30 s (imports, images, capture) before its first epoch is checkpointed
    DEV=cuda GRAPH=(--cuda-graph) RESERVE=60 MIN_STAGE=20 CELLS_MIN=60 K_LIST=1,3,9
    BENCH=results/benchmarks WORK=.lease/work LOGS=.lease/logs
    STUDY=("darts-pt|darts_v1,gaea,fixed_alpha|0-2" "nb201-darts|darts_v1,gaea|0-2")
    STUDY_DIR=results/ws-study
    SWEEP_DATA=(--data jpeg --images "$IMAGES")
  fi
  rm -rf "$LOGS"
  mkdir -p "$OUT" "$LOGS" "$WORK" "$BENCH"
  exec 3>&1 4>&2 > >(tee -a "$LOGS/console.log") 2>&1
  local tee_pid=$!
  say "lease: budget ${BUDGET} s (${RESERVE} s kept to pack), device $DEV, stages $STAGES," \
    "out $OUT"
  [[ -f $TABLE && -f $IMAGES ]] || die "$DATA lacks the staged data: run 'prepare' and carry $DATA"

  # setup: the device, and the ground-truth store imported from the carried table
  local setup_rc=0
  run_stage setup 120 "$PY" -c "
import sys, torch, subprocess
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')
if '$DEV' == 'cuda' and not torch.cuda.is_available():
    sys.exit('no CUDA device')
sys.exit(subprocess.call([sys.executable, '-m', 'harness', 'bench', 'import', '$TABLE',
                          '--name', 'tss-public']))"
  setup_rc=$STAGE_RC
  head -n 2 "$LOGS/setup.log" | sed 's/^/  /'
  ((setup_rc == 0)) || say "  setup failed: the stages that need the store or the GPU will fail too"
  STORE=$HARNESS_HOME/stores/tss-public

  # which measurements to take: in auto, only those not on file for this device yet
  declare -gA TODO=()
  local todo name what
  if [[ $STAGES == auto ]]; then
    STAGES=setup,tests,fused,concurrency,cells
    if ! todo=$("$PY" benchmarks/gpu_lease.py missing --bench-dir "$BENCH" --device "$DEV" \
      --jobs "$K_LIST" 2>>"$LOGS/auto.log"); then
      say "  could not read what is on file (see auto.log): measuring everything"
      todo=$(printf '%s\n' fused-eager fused-graphed-darts_v1 fused-graphed-gaea \
        fused-per-op-ab "concurrency $K_LIST")
    fi
    say "  $(tail -n 1 "$LOGS/auto.log")"
  else
    todo=$(printf '%s\n' fused-eager fused-graphed-darts_v1 fused-graphed-gaea \
      fused-per-op-ab "concurrency $K_LIST")
  fi
  while read -r name what; do
    if [[ -n $name ]]; then TODO[$name]=${what:-all}; fi
  done <<<"$todo"

  if wants tests; then
    run_stage tests 120 "$PY" -m pytest -q -p no:cacheprovider --junitxml="$LOGS/tests.xml" \
      tests/supernet/test_graphed_cuda.py
  fi

  if ((TINY)); then
    local eager=(--device cpu --threads 1 --warmup 1 --steps 1)
    local search=(--device cpu --card tiny-cpu --epochs 2 --max-steps 2)
    local conc=(--device cpu --card tiny-cpu --steps 2 --threads 1)
  else
    local eager=(--device cuda --threads 4)
    local search=(--device cuda --cuda-graph --epochs 2)
    local conc=(--device cuda --cuda-graph --steps 30 --images "$IMAGES")
  fi
  if needs fused-eager; then
    run_stage fused-eager 90 "$PY" benchmarks/bench_supernet.py "${eager[@]}" --cells both \
      --out "$BENCH/supernet_throughput.json"
  fi
  local method
  for method in darts_v1 gaea; do
    if needs "fused-graphed-$method"; then
      run_stage "fused-graphed-$method" 120 "$PY" benchmarks/bench_search.py "${search[@]}" \
        --method "$method" --images "$IMAGES" --cache "$HARNESS_HOME/images" \
        --out "$BENCH/darts_search.json"
    fi
  done
  if needs fused-per-op-ab; then  # the same search with the per-op cells, on this machine
    run_stage fused-per-op-ab 90 "$PY" benchmarks/bench_concurrency.py "${conc[@]}" --jobs 1 \
      --cells per-op --cache "$HARNESS_HOME/images" --log-dir "$LOGS" \
      --out "$BENCH/search_concurrency.json"
  fi
  if needs concurrency; then
    run_stage concurrency 200 "$PY" benchmarks/bench_concurrency.py "${conc[@]}" \
      --jobs "${TODO[concurrency]/all/$K_LIST}" --cells fused --cache "$HARNESS_HOME/images" \
      --log-dir "$LOGS" --out "$BENCH/search_concurrency.json"
  fi

  local studies=() entry card methods seeds
  for entry in "${STUDY[@]}"; do
    IFS='|' read -r card methods seeds <<<"$entry"
    studies+=(--study "$card:$STUDY_DIR/$card:$methods:$seeds")
    if wants cells; then
      local cap
      cap=$(left)
      if ((CELLS_TIMEOUT > 0 && CELLS_TIMEOUT < cap)); then cap=$CELLS_TIMEOUT; fi
      if ((cap < CELLS_MIN)); then cap=0; fi  # too short to checkpoint an epoch: skip
      run_stage "cells-$card" "$cap" "$PY" -m harness -v supernet run --methods "$methods" \
        --card "$card" --seeds "$seeds" --selections magnitude,perturbation "${SWEEP_DATA[@]}" \
        --store "$STORE" --device "$DEV" "${GRAPH[@]}" --jobs "$CELL_JOBS" --workdir "$WORK" \
        --out "$STUDY_DIR/$card" --no-progress
      # a sweep cut short means the time is up: the later sweeps wait for the next lease
      if [[ $STAGE_RC =~ ^(124|137|143|skipped)$ ]]; then
        STAGES=${STAGES//cells/}
      fi
    fi
  done

  say "[$(clock)] pack"
  local pack_rc=0
  "$PY" benchmarks/gpu_lease.py pack --out "$OUT" --bench-dir "$BENCH" --work-dir "$WORK" \
    --logs-dir "$LOGS" "${studies[@]}" --device "$DEV" --budget "$BUDGET" \
    --started "$STARTED" || pack_rc=$?
  if [[ ! -f $OUT/lease-results.tar.gz ]]; then  # the pack broke: keep at least the results
    say "error: pack exited $pack_rc; packing results and logs without checkpoints"
    tar czf "$OUT/lease-results.tar.gz" --ignore-failed-read "$LOGS" "$BENCH"/*.json \
      "$STUDY_DIR" "$WORK"/*/*.progress.log 2>/dev/null || true
  fi
  rm -rf "$HARNESS_HOME"
  exec 1>&3 2>&4 3>&- 4>&-  # let tee print the last lines before the command returns
  wait "$tee_pid" 2>/dev/null || true
}

# ------------------------------------------------------------------------------ collect
collect() {
  [[ $# -eq 1 ]] || die "collect needs the folder of a reply's files (files_at)"
  PYTHONPATH=$ROOT "$PY" benchmarks/gpu_lease.py collect "$1"
  PYTHONPATH=$ROOT "$PY" benchmarks/gpu_lease.py travel --write-plan || true
  say "the next device call: $RUN_CALL"
}

# ------------------------------------------------------------------------------ dry run
# kill_after_epoch WORK PIDFILE: end the sweep whose timeout PID is in PIDFILE once a cell
# under WORK has logged its second epoch (as a lease running out of time would, but at a
# point that does not depend on how loaded this machine is)
kill_after_epoch() {
  local work=$1 pidfile=$2 waited=0
  while ((waited < 600)); do
    if grep -qs "epoch 2/" "$work"/*/*.progress.log && [[ -s $pidfile ]]; then
      kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
      say "  (dry run: the study sweep killed after its first cell's second epoch)"
      return 0
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
}

dry_run() {
  local began=$SECONDS dry=.lease/dry
  export OMP_NUM_THREADS=1
  prepare
  rm -rf "$dry"
  mkdir -p "$dry/benchmarks"
  cp results/benchmarks/darts_search.json results/benchmarks/supernet_throughput.json \
    "$dry/benchmarks/"
  say "== dry run 1: every stage; the study sweep is killed in its first cell =="
  kill_after_epoch "$dry/work" "$dry/logs/cells-cpu-cifar10.pid" &
  local watcher=$!
  OUT=$dry/out1 "$BASH" "${BASH_SOURCE[0]}" device --tiny --budget 300 \
    --stages setup,tests,fused,concurrency,cells
  kill "$watcher" 2>/dev/null || true
  wait "$watcher" 2>/dev/null || true
  PYTHONPATH=$ROOT "$PY" benchmarks/gpu_lease.py check-out "$dry/out1"
  collect "$dry/out1"
  rm -rf "$dry/logs"
  say "== dry run 2: a fresh machine with the carried checkpoints; measured stages skip (auto) =="
  OUT=$dry/out2 "$BASH" "${BASH_SOURCE[0]}" device --tiny --budget 300
  PYTHONPATH=$ROOT "$PY" benchmarks/gpu_lease.py check-out "$dry/out2"
  collect "$dry/out2"
  PYTHONPATH=$ROOT "$PY" benchmarks/gpu_lease.py check-resume "$dry/work"
  say "dry run done in $((SECONDS - began)) s"
}

case ${1:-} in
  prepare) shift; prepare "$@" ;;
  device) shift; device "$@" ;;
  collect) shift; collect "$@" ;;
  dry-run | --dry-run) shift; dry_run "$@" ;;
  -h | --help | help | "") usage ;;
  *) die "unknown subcommand $1 (see --help)" ;;
esac
