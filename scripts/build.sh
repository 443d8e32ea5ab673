#!/usr/bin/env bash
# Configures and builds NoMQ into ./build (or $BUILD_DIR). Extra arguments go to cmake.
# Developer builds treat warnings as errors (-DNOMQ_WERROR=ON; a plain cmake build does not).
# NOMQ_TARGETS="nomq ..." builds only those targets (the demo needs only the tool).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${generator[@]}" -DNOMQ_WERROR=ON "$@"
elif [ $# -gt 0 ]; then
  cmake -S . -B "$BUILD_DIR" "$@"
fi
targets=()
for t in ${NOMQ_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j "$(nproc)" "${targets[@]}"
