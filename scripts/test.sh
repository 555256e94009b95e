#!/usr/bin/env bash
# Sets up, builds and runs every test: the C programs through ctest, the Lua specs through busted.
# YT_SANITIZE=1 runs the same suite on an AddressSanitizer + UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=build
[ "${YT_SANITIZE:-0}" = "1" ] && build=build-asan
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
export YT_BUILD_DIR="$PWD/$build"

echo "== C tests (ctest)"
ctest --test-dir "$build" --output-on-failure -j1

echo "== Lua tests (busted)"
if [ "${YT_SANITIZE:-0}" = "1" ]; then
  # the lua interpreter is not instrumented: preload the sanitizer runtimes
  export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
  export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"
fi
# busted runs under whatever `lua` names; tools such as luacheck pull in lua5.1 and may take that name, so
# name the interpreter the core module is built for
lua5.4 "$(command -v busted)" --cpath="$build/lua/?.so" tests/lua
