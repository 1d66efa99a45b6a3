#!/usr/bin/env bash
# Installs what Berth needs on a fresh Debian machine (as root): Debian packages, then a
# virtualenv in .venv with the project and its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv python3-pip podman runc catatonit openssh-server openssh-client
              busybox-static nftables iproute2 systemd sshfs)  # systemd: systemd-analyze checks the units;
              # sshfs: shared volumes
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Vagrant only validates the Vagrantfile here: none of its providers' recommends are needed.
if ! dpkg-query -W -f='${Status}' vagrant 2>/dev/null | grep -q "install ok installed"; then
  echo "installing Debian package: vagrant"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends vagrant >/dev/null
fi
# chromium: the web page's browser test (tests/test_lab_cluster.py) drives it with Playwright from
# PyPI (no browser download); its recommends (printing, sound, a desktop) are not needed headless.
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  echo "installing Debian package: chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
# docker.io: lab hosts with runtime docker run their own dockerd. Its services must not start
# on this machine (a system dockerd changes the machine's iptables): a policy-rc.d refuses them
# for the install only, as Debian's invoke-rc.d honours.
if ! dpkg-query -W -f='${Status}' docker.io 2>/dev/null | grep -q "install ok installed"; then
  echo "installing Debian package: docker.io (its services left stopped)"
  policy=/usr/sbin/policy-rc.d
  saved=""
  if [ -e "$policy" ]; then saved=$(mktemp); cp -p "$policy" "$saved"; fi
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null \
    || { rc=$?; if [ -n "$saved" ]; then mv "$saved" "$policy"; else rm -f "$policy"; fi; exit $rc; }
  if [ -n "$saved" ]; then mv "$saved" "$policy"; else rm -f "$policy"; fi
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now docker.service docker.socket containerd.service >/dev/null 2>&1 || true
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.berth-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test,lab]'
  touch "$stamp"
fi
