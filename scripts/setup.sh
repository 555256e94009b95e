#!/usr/bin/env bash
# Installs the Debian packages yolotrain needs (only those missing) and builds it into build/.
# Usage: bash scripts/setup.sh            (release build in build/)
#        YT_SANITIZE=1 bash scripts/setup.sh   (ASan+UBSan build in build-asan/)
#        YT_TSAN=1 bash scripts/setup.sh       (ThreadSanitizer build in build-tsan/, OpenMP off)
#        YT_FUZZ=1 bash scripts/setup.sh       (libFuzzer harnesses with clang in build-fuzz/; see scripts/fuzz.sh)
#        YT_TEST_DEPS=1 bash scripts/setup.sh  (also what the tests check files with: onnx and OpenCV for Debian's
#                                               python3, onnxruntime from npm into tests/onnx, protobuf and protoc
#                                               for the TensorBoard reader, strace, which watches an installed
#                                               tree's file accesses; scripts/test.sh sets it)
#        YT_LINT_DEPS=1 bash scripts/setup.sh  (also scripts/lint.sh's tools: clang-format, luacheck, StyLua from npm
#                                               into scripts/lint; YT_SETUP_NO_BUILD=1 installs without building)
#        YT_WERROR=1 bash scripts/setup.sh     (compiler warnings are errors: CI builds so)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config git
  liblua5.4-dev lua5.4 lua-busted lua-cjson
  libopenblas-openmp-dev libsdl2-image-dev libsdl2-dev libyaml-dev libreadline-dev
  libcairo2-dev fonts-dejavu-core libopenmpi-dev openmpi-bin libzip-dev
  libprotobuf-c-dev protobuf-c-compiler libonnx-dev
  libcurl4-openssl-dev libssl-dev ca-certificates libarchive-dev libdnnl-dev)
[ "${YT_FUZZ:-0}" = "1" ] && packages+=(clang libclang-rt-dev)
if [ "${YT_TEST_DEPS:-0}" = "1" ]; then
  packages+=(python3 python3-numpy python3-onnx python3-opencv python3-protobuf protobuf-compiler strace)
  command -v npm >/dev/null || packages+=(nodejs npm)
fi
if [ "${YT_LINT_DEPS:-0}" = "1" ]; then
  packages+=(clang-format lua-check)
  command -v npm >/dev/null || packages+=(nodejs npm)
fi
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

# onnxruntime's CPU libraries ship inside the npm package; its install script only fetches optional extras
# (which needs a network the tests do not have), hence --ignore-scripts
ort_version=$(sed -n 's/.*"onnxruntime-node": "\(.*\)".*/\1/p' tests/onnx/package.json)
if [ "${YT_TEST_DEPS:-0}" = "1" ] && ! grep -qs "\"version\": \"$ort_version\"" \
    tests/onnx/node_modules/onnxruntime-node/package.json; then
  echo "setup: installing onnxruntime-node $ort_version into tests/onnx"
  (cd tests/onnx && npm install --ignore-scripts --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null)
fi

# StyLua's WASM build runs offline under node (its -bin twin downloads a binary at install)
stylua_version=$(sed -n 's/.*"@johnnymorganz\/stylua": "\(.*\)".*/\1/p' scripts/lint/package.json)
if [ "${YT_LINT_DEPS:-0}" = "1" ] && ! grep -qs "\"version\": \"$stylua_version\"" \
    scripts/lint/node_modules/@johnnymorganz/stylua/package.json; then
  echo "setup: installing StyLua $stylua_version into scripts/lint"
  (cd scripts/lint && npm install --ignore-scripts --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null)
fi
[ "${YT_SETUP_NO_BUILD:-0}" = "1" ] && exit 0

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
werror=OFF
[ "${YT_WERROR:-0}" = "1" ] && werror=ON
cmake -S . -B "$build" "${flags[@]}" -DYT_WERROR=$werror >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/yolotrain"
