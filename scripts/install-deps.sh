#!/usr/bin/env bash
# Install the Debian packages DimpleDb builds and tests with, if missing.
# Idempotent, no prompts. Needs root (or sudo) only when something is missing.
set -euo pipefail

pkgs=(
  # build
  gcc meson ninja-build pkg-config
  libsqlite3-dev libcurl4-openssl-dev libssh2-1-dev libssl-dev zlib1g-dev
  libcjson-dev libinih-dev libexpat1-dev
  # tests: real servers and reference tools
  sqlite3 age awscli python3
  radosgw ceph-mon ceph-osd
  curl openssl  # tests/servers/s3.sh makes the bucket; tests/s3 makes a TLS cert
  openssh-server openssh-client openssh-sftp-server sshpass procps
  # sanitizers, fuzzing, memory checking
  clang libclang-rt-14-dev valgrind
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
# --no-install-recommends keeps ceph to the mon/osd/rgw daemons the S3 tests
# start on loopback; policy-rc.d keeps apt from starting system services.
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
