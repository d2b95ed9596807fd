#!/usr/bin/env bash
# Stops the one-node Slurm that tools/cluster/slurm-up.sh started: slurmd,
# slurmctld, then munged, each by the pid in its pid file (only those
# processes; a site's own daemons are left alone). Jobs still running are
# cancelled first. Idempotent.
set -uo pipefail

dir=${KEDIFF_SLURM_DIR:-/tmp/kediff-slurm}
export SLURM_CONF=$dir/etc/slurm.conf

if [ -f "$dir/run/slurmctld.pid" ] && kill -0 "$(cat "$dir/run/slurmctld.pid")" 2>/dev/null; then
  scancel --full --quiet --partition=debug 2>/dev/null || true
fi

stop() { # NAME: TERM, then KILL after 10 s
  local pidfile=$dir/run/$1.pid pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "slurm-down: $1 ($pid) did not stop on TERM: killing it" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
    echo "slurm-down: stopped $1 ($pid)" >&2
  fi
  rm -f "$pidfile"
}
stop slurmd
stop slurmctld
stop munged
