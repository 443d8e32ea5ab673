#!/usr/bin/env bash
# The unit, vector and simulation suites once more, with the mbedTLS crypto backend
# (-DNOMQ_CRYPTO=mbedtls: the Node, the simulator, the tool and the vector tests run on it) in
# build-mbedtls/ (or $BUILD_DIR). Builds only what those suites need. Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-mbedtls}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # ccache caches a source compiled with a precompiled header (NOMQ_PCH, the tests and the tool)
  # only with these two sloppiness settings, added to the user's own (docs/development.md).
  sloppiness=$(ccache -k sloppiness 2>/dev/null || true)
  export CCACHE_SLOPPINESS="${sloppiness:+$sloppiness,}pch_defines,time_macros"
fi
cmake -S . -B "$BUILD_DIR" "${generator[@]}" "${launcher[@]}" -DNOMQ_CRYPTO=mbedtls -DNOMQ_WERROR=ON -DNOMQ_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target nomq_unit_tests nomq_sim_tests nomq_mcu_sim_host nomq
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" -L '^(unit|vectors|sim)$' "$@"
