#!/usr/bin/env bash
# README command 1: installs what is needed, builds, and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
NOMQ_TARGETS=nomq scripts/build.sh   # only what the demo runs
exec ./build/nomq demo "$@"
