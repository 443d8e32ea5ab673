#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz/ and runs one for a bounded time.
#
#   scripts/fuzz.sh TARGET SECONDS [extra libFuzzer flags...]
#   TARGET: wire_v1_decode | wire_v2_decode | config_legacy | config_json | engine
#
# The run starts from the committed seeds (fuzz/corpus/TARGET/) plus the working corpus of
# earlier runs (build-fuzz/corpus/TARGET/, not committed) and writes new coverage to the latter.
# A crash leaves its input in build-fuzz/artifacts/TARGET/ and makes the script exit non-zero;
# commit such an input under fuzz/corpus/TARGET/ with the fix, so the replay test keeps it.
# The last line printed is a summary: "fuzz TARGET: N runs in S s, exit C (cov: E ft: F corp: U)",
# S being the wall time of the run and cov/ft/corp libFuzzer's last status (edges, features,
# working-corpus inputs).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 2 ]]; then
  echo "usage: $0 TARGET SECONDS [libFuzzer flags...]" >&2
  exit 2
fi
target=$1
seconds=$2
shift 2
case "$target" in
  wire_v1_decode|wire_v2_decode|config_legacy|config_json|engine) ;;
  *) echo "fuzz.sh: unknown target '$target'" >&2; exit 2 ;;
esac
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number" >&2; exit 2; }

build=build-fuzz
if [[ ! -f $build/build.ninja ]]; then
  CXX=${FUZZ_CXX:-clang++-14} cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DNOMQ_FUZZ=ON -DNOMQ_WERROR=ON -DNOMQ_BUILD_TESTS=OFF -DNOMQ_BUILD_CLI=OFF -DNOMQ_BUILD_BENCH=OFF \
    -DNOMQ_INSTALL=OFF >/dev/null
fi
if ! cmake --build $build -j"${FUZZ_JOBS:-2}" --target "fuzz_$target" >$build/build_$target.log 2>&1; then
  tail -n 40 $build/build_$target.log >&2
  echo "fuzz.sh: building fuzz_$target failed" >&2
  exit 1
fi

work=$build/corpus/$target
artifacts=$build/artifacts/$target
mkdir -p "$work" "$artifacts"
log=$build/fuzz_$target.log
status=0
started=$SECONDS
# -max_len: the largest datagram a node accepts plus room for a few ops (engine scripts).
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
  "$build/fuzz_$target" "$work" "fuzz/corpus/$target" -max_total_time="$seconds" \
  -max_len="${FUZZ_MAX_LEN:-4096}" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$@" >"$log" 2>&1 || status=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
elapsed=$((SECONDS - started))  # wall time: an interrupted run stops before SECONDS
cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1 || true)
if [[ $status -ne 0 ]]; then
  tail -n 60 "$log" >&2
  echo "fuzz.sh: $target failed (exit $status); inputs in $artifacts/, log $log" >&2
fi
echo "fuzz $target: ${runs:-0} runs in $elapsed s, exit $status${cov:+ ($cov)}"
exit $status
