#!/usr/bin/env bash
# NoMQ on a Cortex-M4, under qemu: installs the ARM toolchain (picolibc) and qemu from Debian,
# fetches Debian's mbedTLS source through a private apt source list (the system's apt
# configuration is not changed; the source is not vendored or committed), builds mbedTLS with
# mcu/mbedtls_config.h, the core and the mbedTLS backend for Cortex-M4 (-Os, no exceptions, no
# RTTI, -Wconversion -Werror), runs every test program on qemu-system-arm -M mps2-an386 with
# semihosting (the exit code is the verdict), compares the target's seeded lossy simulation with
# the host's run of the same scenarios (built in the host build, ./build or $NOMQ_HOST_BUILD_DIR,
# which needs the host's packages: scripts/install-deps.sh) and prints the footprint read from
# the link map. Idempotent; run as root or with sudo on Debian 12. ELFs and maps stay in
# build-mcu/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${MCU_BUILD_DIR:-$root/build-mcu}
start=$(date +%s)
mkdir -p "$out"

# --- 1. toolchain and qemu (apt is not touched when everything is there)
packages=(gcc-arm-none-eabi picolibc-arm-none-eabi libstdc++-arm-none-eabi-picolibc
  qemu-system-arm cmake ninja-build python3 ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "mcu: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- 2. mbedTLS source from Debian, with a private source list
src_dir=$out/mbedtls-src
if [ ! -f "$src_dir/library/aes.c" ]; then
  apt_dir=$out/apt
  rm -rf "$apt_dir"
  mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/download"
  # apt downloads as its unprivileged _apt user when it can write the target folder.
  if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$apt_dir/download"; fi
  # The system's own sources, as deb-src.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    sed -E 's/^Types:.*/Types: deb-src/' "$f" > "$apt_dir/sources.list.d/$(basename "$f")"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    sed -nE 's/^[[:space:]]*deb[[:space:]]+/deb-src /p' "$f" > "$apt_dir/sources.list.d/$(basename "$f")"
  done
  apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -q)
  mkdir -p "$apt_dir/cache/archives/partial"
  apt-get "${apt_opts[@]}" update
  (cd "$apt_dir/download" && apt-get "${apt_opts[@]}" source --download-only mbedtls)
  tarball=$(ls "$apt_dir"/download/mbedtls_*.orig.tar.* | head -n 1)
  rm -rf "$src_dir" "$out/mbedtls-unpack"
  mkdir -p "$out/mbedtls-unpack"
  tar -xf "$tarball" -C "$out/mbedtls-unpack"
  mv "$out"/mbedtls-unpack/* "$src_dir"
  rmdir "$out/mbedtls-unpack"
  echo "mcu: mbedTLS source $(basename "$tarball")"
fi

# --- 3. build for Cortex-M4
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$root/mcu" -B "$out" -G Ninja \
  -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-arm-none-eabi.cmake" \
  -DMBEDTLS_SOURCE_DIR="$src_dir" "${launcher[@]}" >/dev/null
cmake --build "$out" -j "$(nproc)"

# --- 4. run on qemu (mps2-an386: Cortex-M4); main's return value is qemu's exit code
failed=0
# run_on_qemu NAME SECONDS [extra qemu options]: runs build-mcu/NAME.elf, prints its output and
# a passed/FAILED line; a failure (or the time limit) sets failed=1.
run_on_qemu() {
  local t=$1 limit=$2 t0 rc=0
  shift 2
  echo "mcu: running $t.elf on qemu-system-arm -M mps2-an386 $*"
  t0=$(date +%s)
  timeout "$limit" qemu-system-arm -M mps2-an386 "$@" -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native -kernel "$out/$t.elf" > "$out/$t.log" 2>&1 || rc=$?
  cat "$out/$t.log"
  if [ "$rc" -eq 0 ]; then
    echo "mcu: $t passed ($(( $(date +%s) - t0 )) s)"
  else
    echo "mcu: $t FAILED (exit $rc)"
    failed=1
  fi
}
programs=(mcu_unit mcu_engine_unit mcu_security_unit mcu_wire_vectors mcu_engine mcu_engine_lean
  mcu_device_loop mcu_noheap mcu_sim)
for t in "${programs[@]}"; do
  run_on_qemu "$t" 600
done

# --- 4a. instruction counts (tests/mcu/icount_target.cpp): with -icount shift=0 qemu's virtual
# clock advances 1 ns per instruction and the board's 25 MHz timer ticks every 40 instructions;
# the program first checks the method on loops of a known instruction count (fails if off).
run_on_qemu mcu_icount 120 -icount shift=0

# --- 4b. the seeded lossy simulation, target against host (tests/mcu/sim_compare.cpp): the same
# scenarios and seeds on the host's build; every `mcu sim` line (delivery account and the digest
# of every datagram and event) must be identical.
host_build=${NOMQ_HOST_BUILD_DIR:-$root/build}
echo "mcu: building nomq_mcu_sim_host in $host_build (the host half of the simulation check)"
host_rc=0
BUILD_DIR=$host_build NOMQ_TARGETS=nomq_mcu_sim_host "$root/scripts/build.sh" > "$out/sim_host_build.log" 2>&1 || host_rc=$?
if [ "$host_rc" -ne 0 ]; then
  tail -n 30 "$out/sim_host_build.log"
  echo "mcu: host build of nomq_mcu_sim_host FAILED (exit $host_rc)"
  failed=1
else
  "$host_build/nomq_mcu_sim_host" > "$out/sim_host.log" 2>&1 || host_rc=$?
  grep '^mcu sim ' "$out/sim_host.log" > "$out/sim_host.lines" || true
  grep '^mcu sim ' "$out/mcu_sim.log" > "$out/sim_target.lines" || true
  if [ "$host_rc" -ne 0 ]; then
    cat "$out/sim_host.log"
    echo "mcu: the host run of the simulation FAILED (exit $host_rc)"
    failed=1
  elif [ ! -s "$out/sim_target.lines" ] || ! diff -u "$out/sim_host.lines" "$out/sim_target.lines"; then
    echo "mcu: the target's simulation DIFFERS from the host's (above: - host, + target)"
    failed=1
  else
    echo "mcu: simulation on the target identical to the host's ($(wc -l < "$out/sim_target.lines") lines, digests included)"
  fi
fi

# --- 5. no heap: the program that runs engines in static buffers links no allocator at all.
# (operator delete and free may be present: every class with a virtual destructor, such as
# nomq::Crypto and nomq::Rng, gets a deleting destructor that names operator delete; with
# nothing that allocates linked in, they are never reached.)
heap_syms=$(arm-none-eabi-nm -C "$out/mcu_noheap.elf" |
  grep -E ' [TtWw] (malloc|calloc|realloc|memalign|aligned_alloc|posix_memalign|_malloc_r|_calloc_r|_realloc_r|sbrk|_sbrk|operator new)\b' || true)
if [ -n "$heap_syms" ]; then
  echo "mcu: mcu_noheap.elf links an allocator:"
  echo "$heap_syms"
  failed=1
else
  echo "mcu: mcu_noheap.elf links no allocator (nm: no malloc, calloc, realloc, sbrk, operator new)"
fi
grep -E '^mcu (state_(small|seed)_bytes|stack_exchange_bytes): ' "$out/mcu_noheap.log" || true
grep -E '^mcu insns_' "$out/mcu_icount.log" || true
# the deepest stack of each program's run, or of any of its tests (tests/mcu/stack_depth.hpp;
# mcu_sim does not measure it)
for t in "${programs[@]}"; do
  sed -n "s/^mcu stack_peak_bytes: /mcu stack_peak_bytes $t: /p" "$out/$t.log"
done

# --- 6. footprint, from the link map of the program that uses everything (the engine test), and
# of the same program on the core built with NOMQ_ERROR_TEXT=0 (errors without reason text)
python3 "$root/scripts/mcu_footprint.py" "$out/mcu_engine.map"
python3 "$root/scripts/mcu_footprint.py" "$out/mcu_engine_lean.map" _no_error_text
arm-none-eabi-size "$out"/*.elf
echo "mcu: done in $(( $(date +%s) - start )) s"
exit $failed
