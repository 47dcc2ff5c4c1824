#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for CI and for trying the slurm/ scripts.
#
#   scripts/slurm_cluster.sh install   apt-get the Debian packages (slurm-wlm, munge, slurmdbd, mariadb-server)
#   scripts/slurm_cluster.sh start     write the configs, start munge, mariadb, slurmdbd, slurmctld, slurmd
#   scripts/slurm_cluster.sh stop      stop those daemons, by their PID files
#   scripts/slurm_cluster.sh status    exit 0 when every daemon runs and the node takes jobs
#
# Every command is idempotent: `start` on a running cluster only checks it; `install` with the
# packages present does nothing. Needs root. There is no systemd here (nor in most CI containers),
# so the daemons are started by hand; they daemonize themselves and write PID files, and `stop`
# signals exactly those PIDs (never a broad pkill: other SLURM or MariaDB users may share the box).
#
# Accounting (slurmdbd on MariaDB) is on because nemo-run polls `sacct` for job states.
# Process tracking is proctrack/linuxproc: the cgroup plugin needs mounts a container may lack.
# Environment: SLURM_CRED_EXPIRE (s, default 5: how long a requeued job waits before it may
# restart), SLURM_KILL_WAIT (s between SIGTERM and SIGKILL, default 30).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TEMPLATES=$HERE/slurm
STATE=${TOOLRL_SLURM_STATE:-/var/lib/toolrl-slurm}
PACKAGES=(slurm-wlm munge slurmdbd mariadb-server)
BINARIES=(sbatch srun sacct scontrol sinfo slurmctld slurmd slurmdbd munged mariadbd)
MARIADB_PID=/run/mysqld/mysqld.pid
MUNGED_PID=/run/munge/munged.pid
DAEMON_PIDS=(/run/slurmd.pid /run/slurmctld.pid /run/slurmdbd.pid "$MARIADB_PID" "$MUNGED_PID")

say() { echo "[slurm_cluster] $*"; }
die() { echo "[slurm_cluster] error: $*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts system daemons)"; }

# The PID in file $1 if that process is alive, else nothing (and a non-zero status).
live_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Poll command "$@" until it succeeds, at most $TRIES times, 0.2 s apart.
wait_for() {
  local i
  for ((i = 0; i < TRIES; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

installed() {
  local b
  for b in "${BINARIES[@]}"; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || return 1
  done
}

cmd_install() {
  need_root
  if installed; then
    say "packages already installed: ${PACKAGES[*]}"
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install ${PACKAGES[*]} with this system's package manager"
  say "apt-get install ${PACKAGES[*]} (about a minute)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The postinst scripts try to start the services; without systemd they print "could not
  # determine current runlevel" and start nothing, which is what we want.
  apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
  installed || die "packages installed but some binaries are missing: ${BINARIES[*]}"
  say "installed"
}

# ---------------------------------------------------------------------------------------- start

start_munge() {
  if live_pid "$MUNGED_PID" >/dev/null; then return 0; fi
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey -c -f -k /etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 600 /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 755 /run/munge
  runuser -u munge -- /usr/sbin/munged
  TRIES=50 wait_for bash -c 'munge -n | unmunge' || die "munged started but munge -n | unmunge fails"
}

db_password() {
  # One random password per machine, kept root-only; MariaDB listens on 127.0.0.1 only.
  if [ ! -s "$STATE/dbpass" ]; then
    install -d -m 700 "$STATE"
    (umask 077; head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$STATE/dbpass")
  fi
  cat "$STATE/dbpass"
}

start_mariadb() {
  if ! live_pid "$MARIADB_PID" >/dev/null; then
    install -d -o mysql -g mysql /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$STATE/mariadb-install.log" 2>&1 \
        || die "mariadb-install-db failed: $STATE/mariadb-install.log"
    fi
    # mariadbd does not daemonize: run it in its own session, detached from this shell.
    setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --pid-file="$MARIADB_PID" \
      </dev/null >>"$STATE/mariadb.log" 2>&1 &
    TRIES=150 wait_for mariadb -e 'select 1' || die "MariaDB did not answer within 30 s: $STATE/mariadb.log"
  fi
  local pass
  pass=$(db_password)
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pass';
    ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pass';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

write_configs() {
  local host nodeline
  host=$(hostname -s)
  # slurmd -C prints this machine's NodeName line (CPUs, sockets, cores, threads, RealMemory).
  nodeline=$(slurmd -C | head -1)
  case $nodeline in NodeName=*) ;; *) die "unexpected 'slurmd -C' output: $nodeline" ;; esac
  install -d -o slurm -g slurm /var/spool/slurmctld /var/log/slurm
  install -d /var/spool/slurmd /etc/slurm
  sed -e "s|@HOST@|$host|" -e "s|@NODELINE@|$nodeline|" \
      -e "s|@CRED_EXPIRE@|${SLURM_CRED_EXPIRE:-5}|" -e "s|@KILL_WAIT@|${SLURM_KILL_WAIT:-30}|" \
      "$TEMPLATES/slurm.conf.in" > /etc/slurm/slurm.conf
  rm -f /etc/slurm/cgroup.conf
  (umask 077; sed -e "s|@DB_PASS@|$(db_password)|" "$TEMPLATES/slurmdbd.conf.in" > /etc/slurm/slurmdbd.conf)
  chown slurm:slurm /etc/slurm/slurmdbd.conf
  chmod 600 /etc/slurm/slurmdbd.conf
}

node_ready() {
  local state
  state=$(sinfo -h -o %t 2>/dev/null | head -1)
  case $state in idle | mix | alloc | comp) return 0 ;; *) return 1 ;; esac
}

cmd_start() {
  need_root
  installed || die "SLURM is not installed: run '$0 install' first"
  install -d -m 700 "$STATE"
  if cmd_status >/dev/null 2>&1; then
    say "already running"
    sinfo
    return 0
  fi
  start_munge
  start_mariadb
  write_configs
  if ! live_pid /run/slurmdbd.pid >/dev/null; then slurmdbd; fi
  TRIES=150 wait_for sacctmgr -n show cluster || die "slurmdbd did not answer: /var/log/slurm/slurmdbd.log"
  if ! live_pid /run/slurmctld.pid >/dev/null; then slurmctld; fi
  if ! live_pid /run/slurmd.pid >/dev/null; then slurmd; fi
  if ! TRIES=150 wait_for node_ready; then
    # A node left DOWN/DRAINED by an earlier run (e.g. killed slurmd) is put back in service.
    scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true
    TRIES=100 wait_for node_ready || { sinfo -R; die "node not idle after 50 s: /var/log/slurm/slurmd.log"; }
  fi
  say "running"
  sinfo
}

# ---------------------------------------------------------------------------------------- stop

cmd_stop() {
  need_root
  local file pid i
  for file in "${DAEMON_PIDS[@]}"; do
    # Read the PID first: munged and mariadbd delete their PID files on exit.
    pid=$(live_pid "$file") || continue
    kill "$pid"
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "pid $pid ($file) still alive after 10 s: SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
    say "stopped pid $pid ($file)"
  done
}

# ---------------------------------------------------------------------------------------- status

cmd_status() {
  local ok=0 file
  for file in "${DAEMON_PIDS[@]}"; do
    if pid=$(live_pid "$file"); then echo "running  $file ($pid)"; else echo "stopped  $file"; ok=1; fi
  done
  if [ $ok = 0 ] && node_ready; then
    sinfo
    return 0
  fi
  return 1
}

case ${1:-} in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 {install|start|stop|status}" >&2; exit 2 ;;
esac
