#!/usr/bin/env bash
# README command 2: installs what is needed, builds, and runs every test under CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh -DNOMQ_PYTHON=ON  # the Python package and its tests are part of the suite (docs/python.md)
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)" "$@"
