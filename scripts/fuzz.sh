#!/usr/bin/env bash
# Fuzzes every reader of files users receive from others (tests/fuzz/fuzz_*.c) with libFuzzer, ASan and UBSan.
# Usage: bash scripts/fuzz.sh [seconds per harness, default 60] [harness names ...]
#   FUZZ_RUNS=N stops a harness after N inputs when that comes first (a long run: FUZZ_RUNS=10000000 ... 3600)
#   Builds build-fuzz/ with clang (setup.sh installs clang and its libFuzzer runtime), then runs each harness
#   from its committed seed corpus (tests/fuzz/corpus/<name>, never written) plus the inputs it found before
#   (build-fuzz/corpus/<name>). A crash stops with the input saved under build-fuzz/crashes/<name>/: add it to
#   tests/fuzz/regressions/<name>/ with the fix, and the normal suite (ctest fuzzreg_<name>) replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true

YT_FUZZ=1 bash scripts/setup.sh >/dev/null # clang, libFuzzer, and build-fuzz/

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for src in tests/fuzz/fuzz_*.c; do names+=("$(basename "$src" .c | sed 's/^fuzz_//')"); done
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# the Lua readers consult the user settings (datasets_dir): a private folder, never the user's own
export YOLOTRAIN_CONFIG_DIR=$PWD/build-fuzz/config
failed=()
for name in "${names[@]}"; do
  work=build-fuzz/corpus/$name crashes=build-fuzz/crashes/$name
  mkdir -p "$work" "$crashes"
  echo "fuzz: $name for ${seconds}s"
  # -rss_limit_mb/-malloc_limit_mb: a reader that allocates far beyond its input is a finding, not a slow run
  # the Lua harnesses keep one Lua heap across inputs: its growth until a collection is no leak
  leaks=1
  case $name in lua_*) leaks=0 ;; esac
  if ! ./build-fuzz/fuzz_"$name" "$work" "tests/fuzz/corpus/$name" -max_total_time="$seconds" -timeout=20 \
      -detect_leaks=$leaks -runs="${FUZZ_RUNS:--1}" \
      -rss_limit_mb=2560 -malloc_limit_mb=1024 -artifact_prefix="$crashes/" -print_final_stats=1 \
      >"build-fuzz/$name.log" 2>&1; then
    failed+=("$name")
    tail -40 "build-fuzz/$name.log"
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "build-fuzz/$name.log" | sed "s/^/fuzz: $name /" || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]} (inputs under build-fuzz/crashes/)" >&2
  exit 1
fi
echo "fuzz: ${#names[@]} harnesses ran ${seconds}s each without a finding"
