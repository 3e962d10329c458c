#!/usr/bin/env bash
# Installs the Debian packages the tests need (the checkers of our output and the servers the
# tests start), only when missing, with one apt-get update. The scripts that start the test
# servers call it too when their binaries are missing, so this is the one place that installs.
set -euo pipefail
need=()
command -v fitsverify >/dev/null || need+=(fitsverify)
command -v stilts >/dev/null || need+=(stilts)
command -v funpack >/dev/null || need+=(libcfitsio-bin)
/usr/bin/python3 -c 'import astropy' 2>/dev/null || need+=(python3-astropy)
# The servers the tests start on loopback (scripts/test-postgres.sh, test-sshd.sh, test-slurm.sh).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v slurmctld >/dev/null || need+=(slurm-wlm)
command -v sbatch >/dev/null || need+=(slurm-client)
command -v munged >/dev/null || need+=(munge)
# Q3C indexes archive positions in PostgreSQL; Chromium runs the console's browser tests.
ls /usr/share/postgresql/*/extension/q3c.control >/dev/null 2>&1 || need+=(postgresql-15-q3c)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "== test tools: fitsverify $(command -v fitsverify), stilts $(command -v stilts), funpack $(command -v funpack), astropy $(/usr/bin/python3 -c 'import astropy; print(astropy.__version__)')"
