#!/usr/bin/env bash
# Hardening CI stage (docs/security.md): bounded fuzz runs of every target, the whole test suite
# under ASan+UBSan, and valgrind memcheck on CLI round trips; `release` builds what a consumer
# builds (-DCMAKE_BUILD_TYPE=Release, g++: the libraries and the tool with the simulator)
# with warnings as errors, since -O3 finds warnings that the -O2 developer build does
# not. Tests and benchmarks are left out of it to keep CI short: the -O2 build has them.
#
#   scripts/ci-hardening.sh [fuzz|asan|valgrind|release]...  # default: fuzz asan valgrind
#
# Environment: FUZZ_SECONDS (per target, default 45), JOBS (build parallelism, default 2),
# CTEST_EXCLUDE (extra ctest -E regex for the ASan run), ASAN_CMAKE_ARGS (extra configure options
# of the ASan build, e.g. -DNOMQ_BUILD_NETNS_TESTS=OFF when CTEST_EXCLUDE skips those tests).
# Exit status: non-zero if any stage failed; each stage prints one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."

jobs=${JOBS:-2}
stages=("$@")
[[ ${#stages[@]} -eq 0 ]] && stages=(fuzz asan valgrind)
failed=()

stage_fuzz() {
  local rc=0
  for t in wire_v1_decode wire_v2_decode config_legacy config_json engine; do
    scripts/fuzz.sh "$t" "${FUZZ_SECONDS:-45}" || rc=1
  done
  return $rc
}

stage_asan() {
  # -O1 -g1 (line tables only: enough for the sanitizers' stack traces): the instrumented
  # build of every test is the longest step of CI, and full debug info at -O2 made it slower
  # to compile and link without finding more.
  # The compile-only targets (freestanding core check, v2 vector generator) are left out: the
  # developer build compiles them, and nothing runs them. ASAN_CMAKE_ARGS adds configure options
  # (CI: -DNOMQ_BUILD_NETNS_TESTS=OFF with the netns tests in CTEST_EXCLUDE, so they are not built).
  # shellcheck disable=SC2086
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNOMQ_SANITIZE=ON -DNOMQ_WERROR=ON \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" -DNOMQ_BUILD_BENCH=OFF \
    -DNOMQ_BUILD_COMPILE_CHECKS=OFF ${ASAN_CMAKE_ARGS:-} >/dev/null || return 1
  if ! cmake --build build-asan -j"$jobs" >build-asan/build.log 2>&1; then
    grep -E -B2 -A6 "error|warning" build-asan/build.log | head -60 >&2
    echo "asan: build failed (build-asan/build.log)" >&2
    return 1
  fi
  # Nothing is excluded by default; CTEST_EXCLUDE lets CI skip a test that cannot run on a
  # particular machine (e.g. netns tests without CAP_NET_ADMIN), and the reason goes in CI config.
  local exclude=${CTEST_EXCLUDE:-}
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    ctest --test-dir build-asan -j"$jobs" --output-on-failure ${exclude:+-E "$exclude"} \
    > build-asan/ctest.log 2>&1
  local rc=$?
  tail -n 25 build-asan/ctest.log
  echo "asan: $(grep -E 'tests passed|tests failed' build-asan/ctest.log | tail -1)"
  return $rc
}

stage_valgrind() {
  command -v valgrind >/dev/null || { echo "valgrind: not installed" >&2; return 1; }
  cmake -S . -B build -G Ninja >/dev/null || return 1
  cmake --build build -j"$jobs" --target nomq >/dev/null || return 1
  python3 scripts/valgrind_cli.py build/nomq
}

stage_release() {
  CXX=${RELEASE_CXX:-g++} cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DNOMQ_WERROR=ON -DNOMQ_BUILD_TESTS=OFF -DNOMQ_BUILD_BENCH=OFF >/dev/null || return 1
  if ! cmake --build build-release -j"$jobs" >build-release/build.log 2>&1; then
    grep -E "error|warning" build-release/build.log | head -20 >&2
    echo "release: build failed (build-release/build.log)" >&2
    return 1
  fi
  echo "release: ${RELEASE_CXX:-g++} -O3 build of the libraries and the tool, no warning"
}

for s in "${stages[@]}"; do
  case "$s" in
    fuzz|asan|valgrind|release) "stage_$s" || failed+=("$s") ;;
    *) echo "ci-hardening.sh: unknown stage '$s' (fuzz, asan, valgrind, release)" >&2; exit 2 ;;
  esac
done
if [[ ${#failed[@]} -ne 0 ]]; then
  echo "ci-hardening: FAILED: ${failed[*]}"
  exit 1
fi
echo "ci-hardening: OK (${stages[*]})"
