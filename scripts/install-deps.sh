#!/usr/bin/env bash
# Installs every Debian package NoMQ needs to build, test and benchmark. Idempotent: packages
# already present are left alone, and apt is not touched at all when nothing is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build g++ clang
  libssl-dev libmbedtls-dev libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-cryptography
  iproute2 nftables procps
  valgrind libclang-rt-14-dev
  gnuplot-nox mosquitto mosquitto-clients nats-server libmosquitto-dev libzmq3-dev libpcap-dev libsqlite3-dev
  linux-perf pkg-config faketime ccache
  tshark lua-luaossl python3-pytest
  python3-dev python3-setuptools python3-pip python3-venv pybind11-dev python3-pybind11 python3-paho-mqtt
  mypy
  libasio-dev
  liblwip-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
