#!/usr/bin/env bash
# Configures and builds NoMQ into ./build (or $BUILD_DIR). Extra arguments go to cmake.
# Developer builds treat warnings as errors (-DNOMQ_WERROR=ON; a plain cmake build does not).
# NOMQ_TARGETS="nomq ..." builds only those targets (the demo needs only the tool).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# ccache (installed by install-deps.sh) lets the later builds of one CI run (package consumer,
# shared after static) reuse objects.
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # ccache caches a source compiled with a precompiled header (NOMQ_PCH, the tests and the tool)
  # only with these two sloppiness settings, added to the user's own (docs/development.md).
  sloppiness=$(ccache -k sloppiness 2>/dev/null || true)
  export CCACHE_SLOPPINESS="${sloppiness:+$sloppiness,}pch_defines,time_macros"
fi
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${generator[@]}" "${launcher[@]}" -DNOMQ_WERROR=ON "$@"
elif [ $# -gt 0 ]; then
  cmake -S . -B "$BUILD_DIR" "$@"
fi
targets=()
for t in ${NOMQ_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j "$(nproc)" "${targets[@]}"
