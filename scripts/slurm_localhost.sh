#!/bin/bash
# A single-node Slurm cluster on localhost (Debian's slurm-wlm + munge) for the launcher's Slurm
# test: `bash scripts/slurm_localhost.sh start|stop|status`. Installs the packages when missing
# (needs root and Debian's registry). The node has this machine's cores and memory, no GPUs;
# process tracking without cgroups so it also runs in a container.
set -euo pipefail
cmd=${1:-start}
CONF_DIR=/etc/slurm
NODE=$(hostname -s)

stop() {
    pkill -x slurmd 2>/dev/null || true
    pkill -x slurmctld 2>/dev/null || true
    pkill -x munged 2>/dev/null || true
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
if [ "$cmd" = status ]; then sinfo -h -o '%N %t %c' && exit 0; exit 1; fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
fi
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
mkdir -p $CONF_DIR /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/lib/munge /var/log/munge
[ -s /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
cat > $CONF_DIR/slurm.conf <<CONF
ClusterName=localhost
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SchedulerType=sched/backfill
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
NodeName=$NODE CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
stop
runuser -u munge -- munged 2>/dev/null || munged --force
slurmctld
slurmd
for _ in $(seq 30); do
    if sinfo -h -o '%t' 2>/dev/null | grep -q idle; then sinfo -h -o '%N %t %c'; exit 0; fi
    sleep 1
done
echo "slurm_localhost: the node did not become idle; see /var/log/slurm/" >&2
exit 1
