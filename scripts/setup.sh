#!/usr/bin/env bash
# Installs the Debian packages yolotrain needs (only those missing) and builds it into build/.
# Usage: bash scripts/setup.sh            (release build in build/)
#        YT_SANITIZE=1 bash scripts/setup.sh   (ASan+UBSan build in build-asan/)
#        YT_TSAN=1 bash scripts/setup.sh       (ThreadSanitizer build in build-tsan/, OpenMP off)
#        YT_FUZZ=1 bash scripts/setup.sh       (libFuzzer harnesses with clang in build-fuzz/; see scripts/fuzz.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config git
  liblua5.4-dev lua5.4 lua-busted lua-cjson
  libopenblas-openmp-dev libsdl2-image-dev libsdl2-dev libyaml-dev libreadline-dev
  libcairo2-dev fonts-dejavu-core libopenmpi-dev openmpi-bin libzip-dev)
[ "${YT_FUZZ:-0}" = "1" ] && packages+=(clang libclang-rt-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${YT_SANITIZE:-0}" = "1" ]; then
  build=build-asan
  flags=(-DYT_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
elif [ "${YT_FUZZ:-0}" = "1" ]; then
  build=build-fuzz
  export CC=clang
  flags=(-DYT_FUZZ=ON -DYT_WITH_MPI=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo)
elif [ "${YT_TSAN:-0}" = "1" ]; then
  build=build-tsan
  flags=(-DYT_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
else
  build=build
  flags=(-DCMAKE_BUILD_TYPE=Release)
fi
cmake -S . -B "$build" "${flags[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/yolotrain"
