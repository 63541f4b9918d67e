#!/usr/bin/env bash
# A real multi-node Slurm cluster on this one machine, for the tests of multi-node blocks, node
# loss and per-node services (issue 16).
#
#   scripts/slurm-cluster.sh up N        N >= 1 compute nodes node1..nodeN (idempotent; 0.5-0.9 s cold, 0.1 s when up)
#   scripts/slurm-cluster.sh down        stop everything this script started, remove the namespaces
#   scripts/slurm-cluster.sh crash NODE  SIGKILL every process in NODE's namespace (a node failure)
#   scripts/slurm-cluster.sh heal NODE   start NODE's slurmd again and return it to service
#   scripts/slurm-cluster.sh drain|resume NODE...   scontrol drain / resume (a block that never starts)
#   scripts/slurm-cluster.sh status      sinfo of this cluster
#   scripts/slurm-cluster.sh env         the `export SLURM_CONF=...` line for clients
#
# Each compute node is a network namespace + UTS namespace: its own host name, its own IP on the
# private bridge sedbr0 (10.77.0.0/24, addresses that exist only in this machine's namespaces; no
# route, no forwarding), its own loopback (a service a node binds on 127.0.0.1 is private to it),
# and the one shared file system (as Lustre/Orion would be). slurmctld runs on the host side of
# the bridge (10.77.0.1); one munged serves the host and every node through its unix socket.
#
# Gotchas (../shared/NOTES-HPC.md): slurmd is started with nsenter + unshare, not `ip netns exec`
# (which remounts /sys and hides the cgroup fs, so slurmd 22.05 dies); the PID namespace is shared,
# so nothing is ever killed by name: a node's processes are exactly those in its network namespace
# (`ip netns pids`, a namespace this script created), the controller is the pid it recorded.
# It runs beside the single-node cluster of scripts/slurm-local.sh: other ports (6917/6918), its
# own configuration (STATE/etc/slurm.conf: clients need SLURM_CONF, which site_configs/
# slurm-cluster.yaml carries), its own state directory.
set -euo pipefail
STATE=${SEDSCALE_CLUSTER_DIR:-/var/tmp/sedscale-cluster}
CONF=$STATE/etc/slurm.conf
BRIDGE=sedbr0
NET=10.77.0
CTLD_IP=$NET.1
HOST=$(hostname -s)
export SLURM_CONF=$CONF

node_ip() { echo "$NET.$((10 + ${1#node}))"; }

alive() {  # alive PID -> 0 when PID is a running, non-zombie process (a zombie answers kill -0)
  local state
  [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || return 1
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$state" != "Z" ] && [ "$state" != "X" ]
}

pid_of() { cat "$STATE/run/$1.pid" 2>/dev/null || true; }

install_packages() {
  if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
     || ! command -v munged >/dev/null || ! command -v nsenter >/dev/null || ! command -v ip >/dev/null; then
    echo "slurm-cluster: installing slurmctld slurmd slurm-client munge iproute2 util-linux (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurmctld slurmd slurm-client munge iproute2 util-linux >/dev/null
  fi
}

start_munge() {  # the one munged of this machine (shared with slurm-local.sh): started only if dead
  mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
  [ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  chmod 0400 /etc/munge/munge.key
  if ! alive "$(cat /run/munge/munged.pid 2>/dev/null || true)"; then
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2*
    if id munge >/dev/null 2>&1; then su -s /bin/sh munge -c "munged" 2>/dev/null || munged --force
    else munged --force; fi
  fi
}

write_config() {  # write_config N
  local n=$1 k cpu_line
  mkdir -p "$STATE"/{etc,spool/ctld,log,run,hosts}
  for k in $(seq 1 "$n"); do mkdir -p "$STATE/spool/node$k"; done
  # CPUs and memory from `slurmd -C` (declaring more memory than it sees drains a node)
  cpu_line=$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //')
  {
    cat <<CONF
ClusterName=sedscale-cluster
SlurmctldHost=$HOST($CTLD_IP)
SlurmctldPort=6917
SlurmdPort=6918
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd-%n.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/log/jobcomp.txt
ReturnToService=2
SchedulerType=sched/backfill
MinJobAge=30
SlurmctldTimeout=10
SlurmdTimeout=10
KillWait=5
CONF
    for k in $(seq 1 "$n"); do echo "NodeName=node$k NodeAddr=$(node_ip "node$k") $cpu_line State=UNKNOWN"; done
    echo "PartitionName=batch Nodes=node[1-$n] Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
  } > "$CONF.tmp"
  mv "$CONF.tmp" "$CONF"
  {
    echo "127.0.0.1 localhost"
    echo "$CTLD_IP $HOST"
    for k in $(seq 1 "$n"); do echo "$(node_ip "node$k") node$k"; done
  } > "$STATE/hosts/all"
  # every node resolves every name (its own included) to a bridge address, like a real compute node
  for k in $(seq 1 "$n"); do cp "$STATE/hosts/all" "$STATE/hosts/node$k"; done
  echo "$n" > "$STATE/nodes"
}

bridge_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$CTLD_IP/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
}

netns_up() {  # netns_up NODE: the namespace, its veth on the bridge, its address and loopback
  local node=$1 veth=vsed${1#node}
  [ -e "/run/netns/$node" ] || ip netns add "$node"
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip link add "$veth" type veth peer name eth0 netns "$node"
    ip link set "$veth" master "$BRIDGE" up
    ip -n "$node" addr add "$(node_ip "$node")/24" dev eth0
  fi
  ip -n "$node" link set lo up
  ip -n "$node" link set eth0 up
}

slurmd_up() {  # slurmd_up NODE: its slurmd inside its namespaces (pid recorded), unless it runs
  local node=$1
  alive "$(pid_of "$node")" && return 0
  # setsid/nsenter/unshare/sh all exec: $! is slurmd's own pid
  setsid nsenter --net="/run/netns/$node" unshare --uts --mount --propagation slave -- sh -c \
    "mount --bind '$STATE/hosts/$node' /etc/hosts && hostname '$node' && exec slurmd -D -f '$CONF' -N '$node'" \
    </dev/null >>"$STATE/log/slurmd-$node.out" 2>&1 &
  echo $! > "$STATE/run/$node.pid"
}

ctld_up() {
  alive "$(pid_of slurmctld)" && return 0
  setsid slurmctld -D -f "$CONF" </dev/null >>"$STATE/log/slurmctld.out" 2>&1 &
  echo $! > "$STATE/run/slurmctld.pid"
}

wait_idle() {  # wait_idle N: until N nodes are idle/mixed/allocated
  local n=$1 ready
  for _ in $(seq 1 300); do
    ready=$(sinfo -h -N -o '%N %T' 2>/dev/null | grep -cE ' (idle|mixed|allocated)$' || true)
    [ "$ready" -ge "$n" ] && return 0
    sleep 0.2
  done
  echo "slurm-cluster: not every node became idle; logs in $STATE/log" >&2
  sinfo -R >&2 || true
  return 1
}

up() {
  local n=${1:-3} t0 k
  [[ "$n" =~ ^[1-9][0-9]?$ ]] || { echo "slurm-cluster: up N (1..99 nodes)" >&2; exit 2; }
  t0=$(date +%s.%N)
  if [ -f "$STATE/nodes" ] && [ "$(cat "$STATE/nodes")" != "$n" ]; then down; fi
  install_packages
  start_munge
  [ -f "$STATE/nodes" ] || write_config "$n"
  bridge_up
  ctld_up
  for k in $(seq 1 "$n"); do netns_up "node$k"; slurmd_up "node$k"; done
  wait_idle "$n"
  echo "slurm-cluster: up in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s ($(sinfo -h -o '%D nodes %T' | paste -sd,)); export SLURM_CONF=$CONF"
}

kill_netns() {  # kill_netns NODE: SIGKILL every process in the node's network namespace
  local node=$1 pids
  [ -e "/run/netns/$node" ] || return 0
  for _ in 1 2 3 4 5; do
    pids=$(ip netns pids "$node" 2>/dev/null || true)
    [ -z "$pids" ] && return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.2
  done
}

crash() {
  local node=${1:?crash NODE}
  kill_netns "$node"
  rm -f "$STATE/run/$node.pid"
  echo "slurm-cluster: $node crashed (every process in its namespace SIGKILLed)"
}

heal() {
  local node=${1:?heal NODE}
  netns_up "$node"
  slurmd_up "$node"
  for _ in $(seq 1 100); do  # ReturnToService=2 resumes a node that registers again; make sure
    scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true
    sinfo -h -n "$node" -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)$' && break
    sleep 0.3
  done
  echo "slurm-cluster: $node healed ($(sinfo -h -n "$node" -o '%T'))"
}

down() {
  local k n
  n=$(cat "$STATE/nodes" 2>/dev/null || echo 0)
  for k in $(seq 1 "$n"); do
    kill_netns "node$k"
    [ -e "/run/netns/node$k" ] && ip netns del "node$k"
    rm -f "$STATE/run/node$k.pid"
  done
  local ctld
  ctld=$(pid_of slurmctld)
  if alive "$ctld"; then
    kill -TERM "$ctld"
    for _ in $(seq 1 50); do alive "$ctld" || break; sleep 0.1; done
    alive "$ctld" && kill -KILL "$ctld"
  fi
  rm -f "$STATE/run/slurmctld.pid" "$STATE/nodes"
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
  # forget the controller's state, so the next `up` starts with no jobs and no down nodes
  rm -rf "$STATE/spool"
  echo "slurm-cluster: down (munged left running; slurm-local.sh shares it)"
}

status() {
  [ -f "$STATE/nodes" ] && alive "$(pid_of slurmctld)" && sinfo -N -o '%N %T %E'
}

case "${1:-}" in
  up) up "${2:-3}" ;;
  down) down ;;
  crash) crash "${2:-}" ;;
  heal) heal "${2:-}" ;;
  drain) shift; for n in "$@"; do scontrol update NodeName="$n" State=DRAIN Reason=sedscale-test; done ;;
  resume) shift; for n in "$@"; do scontrol update NodeName="$n" State=RESUME; done ;;
  status) status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 up N | down | crash NODE | heal NODE | drain NODE... | resume NODE... | status | env" >&2
     exit 2 ;;
esac
