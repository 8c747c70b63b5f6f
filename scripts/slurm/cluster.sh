#!/usr/bin/env bash
# A single-node SLURM cluster on loopback for tests (Debian's slurm-wlm + munge).
#
#   scripts/slurm/cluster.sh install        # apt-get install the daemons (root), once
#   scripts/slurm/cluster.sh start DIR      # config + state under DIR, daemons started
#   scripts/slurm/cluster.sh stop DIR       # stop the daemons started by `start` (by PID)
#
# `start` writes DIR/slurm.conf (one node "localhost", NodeAddr 127.0.0.1, all CPUs of this
# machine, a 30-minute MaxTime), a munge key, and starts munged, slurmctld and slurmd with
# their logs and PID files in DIR; it waits (bounded) until `sinfo` shows the node idle, and
# prints the daemons' logs and exits 1 otherwise. Export SLURM_CONF=DIR/slurm.conf to use it.
set -euo pipefail
cmd=${1:?usage: cluster.sh install|start DIR|stop DIR}

case "$cmd" in
install)
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
     && command -v sbatch >/dev/null; then exit 0; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slurmd slurmctld slurm-client munge >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q slurmd slurmctld slurm-client munge >/dev/null; }
  ;;
start)
  dir=$(mkdir -p "${2:?state dir}" && cd "$2" && pwd)
  mkdir -p "$dir"/{munge,spool,state,log}
  chmod 700 "$dir/munge"
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
  user=$(id -un)
  # two free loopback ports (another cluster, e.g. a developer's, may hold the defaults)
  read -r ctld_port d_port < <(python3 -c 'import socket
ps = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ps.append(s)
print(*[s.getsockname()[1] for s in ps])')
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  cat > "$dir/slurm.conf" <<CONF
ClusterName=hotmess-test
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=$user
SlurmdUser=$user
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=60 State=UP OverSubscribe=YES
CONF
  export SLURM_CONF="$dir/slurm.conf"
  munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" -f
  slurmctld -f "$SLURM_CONF" -i >>"$dir/log/slurmctld.out" 2>&1 &
  slurmd -f "$SLURM_CONF" >>"$dir/log/slurmd.out" 2>&1 &
  for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "SLURM_CONF=$SLURM_CONF"; exit 0
    fi
    sleep 1
  done
  echo "SLURM did not come up within 60 s; logs follow" >&2
  for f in "$dir"/log/*; do echo "== $f" >&2; tail -n 40 "$f" >&2; done
  exit 1
  ;;
stop)
  dir=$(cd "${2:?state dir}" && pwd)
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  done
  ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
