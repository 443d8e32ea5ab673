#!/usr/bin/env bash
# README command 1: installs what is needed, builds, and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec ./build/nomq demo "$@"
