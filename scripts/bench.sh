#!/usr/bin/env bash
# Builds and runs the NoMQ benchmarks (not part of the tests): NoMQ between two processes on
# loopback, raw UDP (the physical limit), Mosquitto through a private local broker, ZeroMQ,
# a fresh `nomq pub -q 1` process to acknowledged next to `mosquitto_pub -q 1`,
# the Python package against the C++ Node and paho-mqtt (bench/python_bench.py),
# the codec and the engine alone, scaling with subscribers and channels. Every measurement is
# repeated; bench/report.py writes bench/results/{results.md,results.json,performance.png}
# and prints `ratio <name>: <value>` lines.
#
#   scripts/bench.sh            full set (about 10 minutes on 2 cores)
#   scripts/bench.sh --quick    reduced set, under 2 minutes
#   options: --reps N (default 5, quick 3)
#            --out DIR (default bench/results, quick: bench/results/quick)
#            --build DIR (default build-bench; a build dir configured with the same flags,
#                         -O2 -g -DNDEBUG, e.g. a RelWithDebInfo dev build, saves a rebuild)
# A full run into bench/results also refreshes the tables in docs/performance.md (between the
# bench:results markers).
#
# The broker is started from a temporary config on a free loopback port and stopped by PID;
# no system service is touched. Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
reps=""
out=""
build_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --reps) reps=$2; shift ;;
    --out) out=$2; shift ;;
    --build) build_dir=$2; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$reps" ] || reps=$([ $quick = 1 ] && echo 3 || echo 5)
# A quick run never overwrites the full run's figures that docs/performance.md shows.
[ -n "$out" ] || out=$([ $quick = 1 ] && echo bench/results/quick || echo bench/results)

for tool in cmake python3 gnuplot /usr/sbin/mosquitto /usr/bin/mosquitto_pub; do
  command -v "$tool" >/dev/null || { echo "bench.sh: $tool missing (scripts/install-deps.sh)" >&2; exit 2; }
done

# Release build with symbols (for perf). -O2: g++ 12 at -O3 reports a false -Wrestrict
# in std::string code and the build treats warnings as errors.
BUILD=${build_dir:-build-bench}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# The CLI is built too: the cli-tput row runs `nomq pub` into `nomq sub`.
if [ ! -f $BUILD/CMakeCache.txt ]; then
  cmake -S . -B $BUILD "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -g -DNDEBUG" -DNOMQ_BUILD_TESTS=OFF -DNOMQ_BUILD_CLI=ON >/dev/null
else
  cmake -S . -B $BUILD -DNOMQ_BUILD_CLI=ON >/dev/null  # a build dir from before the CLI row
fi
cmake --build $BUILD --target nomq_perf nomq
perf=$BUILD/nomq_perf
# The Python rows (bench/python_bench.py): the nomq package, when CMake found pybind11, run by
# the interpreter it was built for; paho-mqtt from Debian's python3-paho-mqtt.
pyexe=""
if grep -q '/python/CMakeFiles/nomq_python.dir' $BUILD/CMakeFiles/TargetDirectories.txt 2>/dev/null; then
  cmake --build $BUILD --target nomq_python
  pyexe=$(sed -n 's/^Python_EXECUTABLE:[A-Z]*=//p' $BUILD/CMakeCache.txt)
fi
[ -n "$pyexe" ] || echo "bench.sh: the nomq Python package is not built (pybind11-dev): no Python rows" >&2

tmp=$(mktemp -d)
broker_pid=""
cleanup() {
  if [ -n "$broker_pid" ]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$tmp/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest none
# NoMQ's default window is 50 pending QoS 1/2 messages: give the broker the same, and room
# to queue so that it never drops QoS 1/2 messages during a run.
max_inflight_messages 50
max_queued_messages 1000000
CONF
/usr/sbin/mosquitto -c "$tmp/mosquitto.conf" &
broker_pid=$!
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.1)" 2>/dev/null && break
  sleep 0.1
done

if [ $quick = 1 ]; then
  sizes="64"; wires="v2"; secs=0.3; rtt_count=1000; pair_count=20000; cli_count=30000; first_count=10
  subs="1 10 100 1000"; chans="10 1000 10000"
else
  sizes="64 256 1024"; wires="v2 v1"; secs=1.0; rtt_count=3000; pair_count=100000; cli_count=100000; first_count=20
  subs="1 10 100 1000"; chans="10 1000 10000"
fi

raw="$tmp/raw.jsonl"
# Every measurement is bounded by its own --seconds/--count; the timeout is a backstop.
run() { timeout 120 "$perf" "$@" >> "$raw" || echo "bench.sh: '$*' failed" >&2; }
runpy() {
  [ -n "$pyexe" ] || return 0
  timeout 120 env PYTHONPATH="$BUILD/python" "$pyexe" bench/python_bench.py "$@" >> "$raw" ||
    echo "bench.sh: 'python_bench.py $*' failed" >&2
}
start=$(date +%s)
# Repetitions outermost: a disturbance (another process) spreads over every series alike
# instead of skewing one of them, and the ratios compare figures taken minutes apart at most.
for rep in $(seq "$reps"); do
  echo "bench.sh: repetition $rep/$reps ($(( $(date +%s) - start )) s)" >&2
  for size in $sizes; do
    run udp-tput --size "$size" --seconds $secs
    run udp-tput --size "$size" --seconds $secs --batch 32
    run udp-rtt --size "$size" --count $rtt_count
    for wire in $wires; do
      for qos in 0 1 2; do run nomq-tput --wire "$wire" --qos $qos --size "$size" --seconds $secs; done
      run nomq-tput --wire "$wire" --qos 0 --to group --size "$size" --seconds $secs
      if [ "$wire" = v2 ]; then
        for qos in 0 1; do run nomq-tput --wire v2 --qos $qos --threaded 1 --size "$size" --seconds $secs; done
        for qos in 0 1; do run nomq-tput --wire v2 --qos $qos --batch 1 --size "$size" --seconds $secs; done
      fi
      for qos in 1 2; do run nomq-rtt --wire "$wire" --qos $qos --size "$size" --count $rtt_count; done
    done
    # The command-line path (processes started per run): nomq pub --repeat into nomq sub > file.
    [ "$size" = 64 ] && run cli-tput --nomq $BUILD/nomq --size "$size" --count $cli_count
    # From Python: the nomq package and paho-mqtt (through the same broker), QoS 0 and 1.
    if [ "$size" = 64 ]; then
      for qos in 0 1; do
        runpy nomq-tput --qos $qos --size "$size" --seconds $secs
        runpy paho-tput --port "$port" --qos $qos --size "$size" --seconds $secs
      done
    fi
    for qos in 0 1 2; do run mqtt-tput --port "$port" --qos $qos --size "$size" --seconds $secs; done
    run mqtt-lat --port "$port" --qos 1 --size "$size" --count $rtt_count
    run zmq-tput --size "$size" --seconds $secs
    run zmq-rtt --size "$size" --count $rtt_count
    for wire in $wires; do
      run codec --wire "$wire" --size "$size" --count $pair_count
      for qos in 0 1 2; do run engine-pair --wire "$wire" --qos $qos --size "$size" --count $pair_count; done
    done
    for qos in 0 1 2; do run engine-pair --wire v2 --crypto null --qos $qos --size "$size" --count $pair_count; done
  done
  # A fresh `nomq pub -q 1` process to acknowledged, next to `mosquitto_pub -q 1` (same broker).
  run first-publish --nomq $BUILD/nomq --port "$port" --count $first_count
  for n in $subs; do
    for qos in 0 1; do run engine-subs --subs "$n" --qos $qos --count $(( 20000 / n + 20 )); done
  done
  for n in $chans; do run engine-channels --channels "$n" --count $(( pair_count / 2 )); done
done

mkdir -p "$out"
machine="$(nproc) vCPU $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(uname -sr), load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
if [ $quick = 1 ]; then cmd="scripts/bench.sh --quick --reps $reps"; else cmd="scripts/bench.sh --reps $reps"; fi
cp "$raw" "$out/raw.jsonl"
python3 bench/report.py "$raw" "$out" machine "$machine" command "$cmd" > "$tmp/ratios.txt"
gnuplot -e "dir='$out'" bench/chart.gp
if [ "$out" = bench/results ] && grep -q '<!-- bench:results:begin -->' docs/performance.md 2>/dev/null; then
  python3 - "$out/results.md" docs/performance.md <<'PY'
import sys
table, doc = open(sys.argv[1]).read(), open(sys.argv[2]).read()
b, e = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"
head, rest = doc.split(b, 1)
tail = rest.split(e, 1)[1]
open(sys.argv[2], "w").write(head + b + "\n" + table.rstrip() + "\n" + e + tail)
PY
  echo "bench.sh: docs/performance.md tables refreshed" >&2
fi
# NoMQ -> nomq bridge -> Mosquitto -> subscriber at QoS 0/1, as a ratio to Mosquitto alone in
# the same run, and the bridge's RSS (docs/bridge.md). Needs the bridge (libmosquitto, SQLite).
if $BUILD/nomq bridge --help >/dev/null 2>&1 && command -v mosquitto_sub >/dev/null; then
  python3 bench/bridge_bench.py $BUILD/nomq --count $([ $quick = 1 ] && echo 5000 || echo 20000) \
    --reps "$reps" >> "$tmp/ratios.txt" || echo "bench.sh: bridge bench failed" >&2
fi
echo "bench.sh: done in $(( $(date +%s) - start )) s; tables in $out/results.md, chart in $out/performance.png" >&2
cat "$tmp/ratios.txt"
