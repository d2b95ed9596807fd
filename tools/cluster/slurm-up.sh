#!/usr/bin/env bash
# Starts a real one-node Slurm on this machine (munged, slurmctld, slurmd on
# loopback), for tools/cluster/test-slurm.sh: the sbatch scripts in
# deploy/slurm run on it unchanged.
#
#   tools/cluster/slurm-up.sh           install if missing, configure, start, wait for the node
#   . <(tools/cluster/slurm-up.sh --env)   SLURM_CONF for sinfo, sbatch, srun in this shell
#   tools/cluster/slurm-down.sh         stop the daemons
#
# Everything lives under KEDIFF_SLURM_DIR (default /tmp/kediff-slurm): the
# config, the munge key and socket, state, spool, logs and pid files; nothing
# under /etc is changed, so a site's own Slurm or munge is left alone. The
# daemons run as root (SlurmUser=root), the way a container without systemd
# runs them. Idempotent: a running cluster with the same config is reused.
#
# Environment: KEDIFF_SLURM_DIR, KEDIFF_SLURM_PORT (slurmctld's port, default
# 6817; slurmd takes the next one).
set -euo pipefail

dir=${KEDIFF_SLURM_DIR:-/tmp/kediff-slurm}
conf=$dir/etc/slurm.conf

if [ "${1:-}" = --env ]; then
  echo "export SLURM_CONF=$conf"
  exit 0
fi

log() { echo "slurm-up: $*" >&2; }
die() { echo "slurm-up: $*" >&2; exit 1; }

# --- install (Debian packages; idempotent) -----------------------------------
missing=()
for p in slurm-wlm munge; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  [ "$(id -u)" = 0 ] || die "not root: install ${missing[*]} with apt-get (or run as root), then rerun"
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  # The packages' postinst scripts try to start the daemons through systemd
  # or invoke-rc.d; without systemd that fails harmlessly (policy-rc.d denies
  # it), and we start them ourselves below.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
[ "$(id -u)" = 0 ] || die "run as root: slurmd must be root to start jobs as their users (SlurmUser=root here)"

# --- this host -----------------------------------------------------------------
host=$(hostname -s)
# slurmctld must reach the node. Given only NodeName it resolves the name
# (getaddrinfo), and where that fails every launch ends in srun's "Can't find
# an address, check slurm.conf" (tried here with a name not in /etc/hosts).
# NodeAddr=127.0.0.1 and SlurmctldHost=$host(127.0.0.1) take DNS out of the
# daemons' way. The ranks of a job still resolve the node's name: the sbatch
# scripts take MASTER_ADDR from scontrol show hostnames. So a hostname that
# does not resolve (common in containers; here it is in /etc/hosts already)
# gets a 127.0.0.1 line in /etc/hosts.
if ! getent hosts "$host" >/dev/null; then
  log "$host does not resolve: adding '127.0.0.1 $host' to /etc/hosts"
  echo "127.0.0.1 $host" >> /etc/hosts
fi
cpus=$(nproc)
# RealMemory must not exceed what slurmd measures, or slurmd registers the
# node as invalid and slurmctld drains it ("Low RealMemory"): take 90% of
# MemTotal, which also leaves room for the daemons themselves.
mem_mib=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
ctld_port=${KEDIFF_SLURM_PORT:-6817}
slurmd_port=$((ctld_port + 1))

# --- running already? ------------------------------------------------------------
export SLURM_CONF=$conf
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# (idle, or busy with jobs: mixed, allocated, completing; not down or drained)
if alive "$dir/run/munged.pid" && alive "$dir/run/slurmctld.pid" && alive "$dir/run/slurmd.pid" &&
  sinfo -h -N -o '%T' 2>/dev/null | grep -qxE 'idle|mixed|allocated|completing'; then
  log "already running ($conf)"
  exit 0
fi
# A half-started cluster (one daemon died) is stopped and started again.
"$(dirname "$0")/slurm-down.sh" >/dev/null 2>&1 || true

for port in "$ctld_port" "$slurmd_port"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port on 127.0.0.1 is in use (another Slurm?): set KEDIFF_SLURM_PORT to a free pair, e.g. KEDIFF_SLURM_PORT=16817"
  fi
done

mkdir -p "$dir"/{etc,munge,run,log,state,spool}
chmod 755 "$dir/munge"   # the socket must be reachable by any user who submits jobs
rm -rf "$dir/state"/* "$dir/spool"/*   # a fresh cluster: no jobs from a previous run

# --- munge ---------------------------------------------------------------------
# A key of our own (1024 random bytes, as mungekey writes), so this never
# touches /etc/munge/munge.key; the socket is ours too, and slurm.conf's
# AuthInfo points the Slurm daemons and clients at it.
if [ ! -s "$dir/munge/munge.key" ]; then
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
fi
chmod 400 "$dir/munge/munge.key"
# --force: munged otherwise refuses hosts it finds insecure or odd (a group-
# or world-writable directory above its files, e.g. KEDIFF_SLURM_DIR under a
# shared folder; an existing socket; little entropy). It starts without it
# here, and a stale socket from a killed munged is handled by its lock file.
munged --force \
  --key-file="$dir/munge/munge.key" \
  --socket="$dir/munge/munge.socket" \
  --pid-file="$dir/run/munged.pid" \
  --log-file="$dir/log/munged.log" \
  --seed-file="$dir/munge/munged.seed"
for _ in $(seq 50); do [ -S "$dir/munge/munge.socket" ] && break; sleep 0.1; done
munge -n -S "$dir/munge/munge.socket" | unmunge -S "$dir/munge/munge.socket" >/dev/null ||
  die "munge does not round-trip a credential: see $dir/log/munged.log"

# --- slurm.conf ------------------------------------------------------------------
cat >"$conf" <<EOF
# Written by tools/cluster/slurm-up.sh: a one-node cluster on loopback.
ClusterName=kediff
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
# No PMI: the ranks learn their place from srun's SLURM_PROCID/NTASKS/LOCALID.
# (slurmd still logs "mpi/pmix: can not load PMIx library" at start: it
# probes every MPI plugin, and Debian's libpmix is not installed; harmless.)
MpiDefault=none
# A node that was DOWN (slurmd restarted, not responding) returns on its own.
ReturnToService=2
# No cgroups. With proctrack/cgroup every step failed in the sandbox this was
# written in (cgroup v1 controllers on a tmpfs /sys/fs/cgroup, no systemd):
# slurmstepd logs "cgroup namespace 'freezer' not mounted. aborting" and srun
# "task 0 launch failed: Plugin initialization failed", though
# /sys/fs/cgroup/freezer is there; other containers give no writable cgroup
# tree at all. linuxproc tracks
# a job's processes through /proc (parent pids) instead, and task/none binds
# nothing (no cpusets), which a one-node test cluster does not need.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# No mail program in a container ("Configured MailProg is invalid" otherwise).
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# Slack for a loaded 2-core machine (default 10 s), quick kills and cleanup.
MessageTimeout=20
InactiveLimit=0
KillWait=5
MinJobAge=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mib State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

# --- daemons ---------------------------------------------------------------------
# Started directly (no systemd); each daemonizes and writes its pid file,
# which slurm-down.sh uses to stop exactly these processes.
slurmctld -f "$conf"
slurmd -f "$conf" -N "$host"

for i in $(seq 60); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 1
done
if [ "$state" != idle ]; then
  sinfo -N -l >&2 || true
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  die "node $host is '${state:-unknown}', not idle, after 60 s (logs above, in $dir/log)"
fi
log "node $host idle: $cpus CPUs, ${mem_mib} MiB; export SLURM_CONF=$conf"
