#!/usr/bin/env bash
# Sets up, builds and runs every test: the C programs through ctest, the Lua specs through busted.
# YT_SANITIZE=1 runs the same suite on an AddressSanitizer + UBSan build.
# YT_TSAN=1 runs the tests of the threaded parts (loader, caches, progress, signals) on a ThreadSanitizer build.
set -euo pipefail
cd "$(dirname "$0")/.."
YT_TEST_DEPS=1 bash scripts/setup.sh
build=build
[ "${YT_SANITIZE:-0}" = "1" ] && build=build-asan
[ "${YT_TSAN:-0}" = "1" ] && build=build-tsan
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
export YT_BUILD_DIR="$PWD/$build"
# the tests never read or write the user's own settings (their defaults put datasets under the XDG data home)
export YOLOTRAIN_CONFIG_DIR="$YT_BUILD_DIR/test-config"
ctest_args=()
specs=(tests/lua)

# the lua interpreter is not instrumented: busted runs with the sanitizer runtimes preloaded
preload=""
host=lua5.4
if [ "${YT_SANITIZE:-0}" = "1" ]; then
  preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
  export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"
elif [ "${YT_TSAN:-0}" = "1" ]; then
  # a preloaded TSan runtime would also enter every shell the specs start (and crash it): busted runs under the
  # instrumented yolotrain executable instead, which is a Lua 5.4 interpreter
  host="$build/yolotrain"
  # OpenMP is off in this build (libgomp is not instrumented): one thread, so OpenBLAS starts no pool either.
  # A report makes the process exit 66, which fails the test that ran it.
  export OMP_NUM_THREADS=1
  export TSAN_OPTIONS="exitcode=66:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp:${TSAN_OPTIONS:-}"
  ctest_args=(-R 'test_data|test_synth')
  specs=(tests/lua/data_spec.lua tests/lua/io_spec.lua tests/lua/interrupt_spec.lua tests/lua/predictor_spec.lua
    tests/lua/synth_spec.lua)
fi

echo "== C tests (ctest)"
ctest --test-dir "$build" --output-on-failure -j1 "${ctest_args[@]}"

echo "== Lua tests (busted)"
[ -n "$preload" ] && export LD_PRELOAD="$preload"
# busted runs under whatever `lua` names; tools such as luacheck pull in lua5.1 and may take that name, so
# name the interpreter the core module is built for
"$host" "$(command -v busted)" --cpath="$build/lua/?.so" "${specs[@]}"
