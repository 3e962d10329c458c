#!/usr/bin/env bash
# Starts a throw-away single-node Slurm cluster for the scheduler's Slurm back-end tests:
# Debian's munged (a generated key), slurmctld and slurmd on loopback, every file in a
# temporary directory (config, state, spool, logs). Source it: it exports IPP_TEST_SLURM=1,
# SLURM_CONF and IPP_TEST_SLURM_PARTITION, and defines stop_test_slurm. Runs as root (slurmd
# starts jobs as the submitting user). Leaves IPP_TEST_SLURM unset, with the reason in
# IPP_TEST_SLURM_SKIP, when the cluster does not come up.
set -euo pipefail

if ! command -v slurmctld >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  bash "$(dirname "${BASH_SOURCE[0]}")/install-test-deps.sh"
fi

SLURM_TEST_DIR=$(mktemp -d /tmp/ipp-test-slurm.XXXXXX)
chmod 755 "$SLURM_TEST_DIR"
mkdir -p "$SLURM_TEST_DIR"/{munge,state,spool,log}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# munge: a fresh key and its own socket, so a system munged (if any) is left alone.
dd if=/dev/urandom of="$SLURM_TEST_DIR/munge/munge.key" bs=1024 count=1 status=none
chmod 700 "$SLURM_TEST_DIR/munge"; chmod 400 "$SLURM_TEST_DIR/munge/munge.key"
MUNGE_SOCKET=$SLURM_TEST_DIR/munge/munge.socket
munged --force --key-file="$SLURM_TEST_DIR/munge/munge.key" --socket="$MUNGE_SOCKET" \
  --pid-file="$SLURM_TEST_DIR/munge/munged.pid" --log-file="$SLURM_TEST_DIR/log/munged.log" --seed-file="$SLURM_TEST_DIR/munge/seed" \
  || { cat "$SLURM_TEST_DIR/log/munged.log" 2>/dev/null; echo "munged did not start"; }

SLURM_NODE=$(hostname -s)
SLURM_CPUS=$(nproc)
SLURM_MEM=$(awk '/MemTotal/ {print int($2/1024/2)}' /proc/meminfo)
cat >"$SLURM_TEST_DIR/slurm.conf" <<EOF
ClusterName=ipptest
SlurmctldHost=$SLURM_NODE(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$SLURM_TEST_DIR/state
SlurmdSpoolDir=$SLURM_TEST_DIR/spool
SlurmctldPidFile=$SLURM_TEST_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_TEST_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_TEST_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_TEST_DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=600
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MessageTimeout=20
SlurmdTimeout=60
NodeName=$SLURM_NODE NodeAddr=127.0.0.1 CPUs=32 RealMemory=$SLURM_MEM State=UNKNOWN
PartitionName=ipptest Nodes=$SLURM_NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
touch "$SLURM_TEST_DIR/cgroup.conf"
export SLURM_CONF=$SLURM_TEST_DIR/slurm.conf

slurm_started=1
slurmctld -i >/dev/null 2>&1 || slurm_started=0
slurmd >/dev/null 2>&1 || slurm_started=0
# Wait (at most 30 s) until the node takes jobs.
slurm_up=0
if [ "$slurm_started" = 1 ]; then
  for _ in $(seq 1 150); do
    state=$(sinfo -h -n "$SLURM_NODE" -o '%t' 2>/dev/null | head -1 || true)
    case "$state" in idle|mix|alloc) slurm_up=1; break ;; esac
    sleep 0.2
  done
fi

if [ "$slurm_up" = 1 ]; then
  export IPP_TEST_SLURM=1
  export IPP_TEST_SLURM_PARTITION=ipptest
  unset IPP_TEST_SLURM_SKIP || true
  echo "== test Slurm $(slurmctld -V | awk '{print $2}') single node $SLURM_NODE (config $SLURM_CONF)"
else
  unset IPP_TEST_SLURM || true
  export IPP_TEST_SLURM_SKIP="the test Slurm cluster did not come up; see $SLURM_TEST_DIR/log"
  echo "== test Slurm did not start; the Slurm tests will skip. Last lines of the logs:"
  tail -5 "$SLURM_TEST_DIR"/log/*.log 2>/dev/null || true
fi

stop_test_slurm() {
  for f in slurmd slurmctld; do
    if [ -f "$SLURM_TEST_DIR/$f.pid" ]; then kill "$(cat "$SLURM_TEST_DIR/$f.pid")" 2>/dev/null || true; fi
  done
  if [ -f "$SLURM_TEST_DIR/munge/munged.pid" ]; then kill "$(cat "$SLURM_TEST_DIR/munge/munged.pid")" 2>/dev/null || true; fi
  sleep 0.2
  rm -rf "$SLURM_TEST_DIR"
}
