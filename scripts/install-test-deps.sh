#!/usr/bin/env bash
# Installs the Debian packages the tests check our output with, only when missing.
set -euo pipefail
need=()
command -v fitsverify >/dev/null || need+=(fitsverify)
command -v stilts >/dev/null || need+=(stilts)
command -v funpack >/dev/null || need+=(libcfitsio-bin)
/usr/bin/python3 -c 'import astropy' 2>/dev/null || need+=(python3-astropy)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "== test tools: fitsverify $(command -v fitsverify), stilts $(command -v stilts), funpack $(command -v funpack), astropy $(/usr/bin/python3 -c 'import astropy; print(astropy.__version__)')"
