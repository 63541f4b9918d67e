#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, without systemd, for the tests and for trying
# sedscale's Slurm paths on a laptop.   scripts/slurm-local.sh start|stop|status
#
# What works (Debian's Slurm 22.05): proctrack/linuxproc, task/none, select/cons_tres with CR_Core
# (the default hands a job the whole node), CPUs and memory from `slurmd -C` (declaring more memory
# drains the node), jobcomp/filetxt (plain sacct would need slurmdbd; Parsl then falls back to
# squeue). munged is started only when its pid file names no live process: a second munged
# silently breaks the first one's socket. Liveness is read from /proc/PID/stat, since a zombie
# still answers `kill -0`.
set -euo pipefail
STATE=${SEDSCALE_SLURM_DIR:-/var/tmp/sedscale-slurm}
CONF_DIR=/etc/slurm
HOST=$(hostname -s)

alive() {  # alive PIDFILE -> 0 when the pid in the file is a running, non-zombie process
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  local state
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != "Z" ] && [ "$state" != "X" ]
}

install_packages() {
  if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
     || ! command -v munged >/dev/null; then
    echo "slurm-local: installing slurmctld slurmd slurm-client munge (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
  fi
}

write_config() {
  mkdir -p "$STATE"/{spool/ctld,spool/d,log,run} "$CONF_DIR"
  local node_line
  # `slurmd -C` prints "NodeName=... CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=.."
  node_line=$(slurmd -C | head -n 1 | sed -e "s/^NodeName=[^ ]*/NodeName=$HOST/")
  cat > "$CONF_DIR/slurm.conf" <<CONF
ClusterName=sedscale-local
SlurmctldHost=$HOST(127.0.0.1)
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/log/jobcomp.txt
ReturnToService=2
SchedulerType=sched/backfill
MinJobAge=30
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=5
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
}

start() {
  install_packages
  write_config
  mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  chmod 0400 /etc/munge/munge.key
  if ! alive /run/munge/munged.pid; then
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2*
    if id munge >/dev/null 2>&1; then
      su -s /bin/sh munge -c "munged" 2>/dev/null || munged --force
    else
      munged --force
    fi
  fi
  alive "$STATE/run/slurmctld.pid" || slurmctld -f "$CONF_DIR/slurm.conf"
  alive "$STATE/run/slurmd.pid" || slurmd -f "$CONF_DIR/slurm.conf"
  for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
      echo "slurm-local: up ($(sinfo -h -o '%D node(s), %c CPUs, %m MB, state %T'))"
      return 0
    fi
    scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
    sleep 1
  done
  echo "slurm-local: the node did not become idle; logs in $STATE/log" >&2
  sinfo -R >&2 || true
  tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
  return 1
}

stop() {
  for f in "$STATE/run/slurmd.pid" "$STATE/run/slurmctld.pid"; do
    if alive "$f"; then kill "$(cat "$f")" || true; fi
  done
  echo "slurm-local: stopped (munged left running; it is harmless)"
}

status() {
  alive "$STATE/run/slurmctld.pid" && alive "$STATE/run/slurmd.pid" && sinfo
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
