#!/usr/bin/env bash
# Installs what vleaf needs on Debian 12 (idempotent), builds it, and prepares
# hugepages when the kernel allows it. Sourced by tools/demo.sh and tools/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential pkg-config meson ninja-build
      dpdk dpdk-dev libdpdk-dev dpdk-doc libpcap-dev
      libboost-dev libspdlog-dev libyaml-cpp-dev nlohmann-json3-dev
      libgtest-dev libgmock-dev libbenchmark-dev
      clang clang-format clang-tidy libclang-rt-14-dev
      frr frr-pythontools gobgpd exabgp bird2
      python3 python3-scapy tshark tcpdump iputils-ping iproute2 ethtool netcat-openbsd procps psmisc)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2 MB hugepages where the kernel lets us; vleafd and the tests fall back to --no-huge.
if [ -w /proc/sys/vm/nr_hugepages ]; then
  cur=$(cat /proc/sys/vm/nr_hugepages)
  [ "$cur" -ge 512 ] || echo 512 > /proc/sys/vm/nr_hugepages 2>/dev/null || true
  mkdir -p /dev/hugepages
  mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || true
fi

BUILD=${BUILD:-build}
if [ ! -f "$BUILD/build.ninja" ]; then
  werror=false; [ "${CI:-}" = true ] && werror=true
  meson setup "$BUILD" --buildtype=release -Dwerror=$werror >/dev/null
fi
ninja -C "$BUILD"
