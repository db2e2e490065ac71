#!/usr/bin/env bash
# Builds llama.cpp's own `llama-bench` against the llama.cpp source that
# llama-cpp-sys-2 vendors (the code voxd-llm runs), into a cache directory
# outside the repository, and prints the binary's path.
#
# The crate ships llama.cpp's library sources but not tools/llama-bench
# (only its README), so the two llama-bench source files come from the
# llama-cpp-python sdist on PyPI, whose vendored llama.cpp is the closest
# release; they use only llama.h and common/, which they are compiled against
# here from the crate's tree. cmake + ninja, Release, GGML_NATIVE=ON and no
# AMX kernels, as voxd-llm is built (.cargo/config.toml, .cargo/no-amx.cmake).
#
#   bash bench/llm-build-llama-bench.sh   # ~8-15 min the first time, then cached
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

SYS_VERSION="${LLAMA_SYS_VERSION:-0.1.161}"
PY_VERSION="${LLAMA_PY_VERSION:-0.3.36}"
cache="${VOXD_BENCH_CACHE:-$HOME/.cache/voxd}/llama-bench"
src="$(ls -d "$HOME"/.cargo/registry/src/*/llama-cpp-sys-2-"$SYS_VERSION"/llama.cpp 2>/dev/null | head -1)"
if [[ -z "$src" ]]; then
  echo "llama-cpp-sys-2 $SYS_VERSION is not in ~/.cargo/registry: run \`cargo fetch\` first" >&2
  exit 1
fi
out="$cache/build-$SYS_VERSION-noamx"
bin="$out/bin/llama-bench"
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache/tool-src"
tool="$cache/tool-src/llama_cpp_python-$PY_VERSION/vendor/llama.cpp/tools/llama-bench"
if [[ ! -f "$tool/llama-bench.cpp" ]]; then
  sdist="$cache/tool-src/llama_cpp_python-$PY_VERSION.tar.gz"
  [[ -f "$sdist" ]] || python3 -m pip download --no-deps --no-binary :all: \
    "llama-cpp-python==$PY_VERSION" -d "$cache/tool-src" >&2
  tar -xzf "$sdist" -C "$cache/tool-src" --wildcards '*/vendor/llama.cpp/tools/llama-bench/*.cpp'
fi

command -v ninja >/dev/null || python3 -m pip install -q "ninja==1.13.0" >&2
mkdir -p "$out/wrapper"
cat >"$out/wrapper/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.14)
project(voxd-llama-bench C CXX)
set(LLAMA_BUILD_COMMON ON CACHE BOOL "" FORCE)
set(LLAMA_CURL OFF CACHE BOOL "" FORCE)
add_subdirectory("$src" llama.cpp)
add_executable(llama-bench "$tool/llama-bench.cpp" "$tool/main.cpp")
target_link_libraries(llama-bench PRIVATE llama-common llama \${CMAKE_THREAD_LIBS_INIT})
target_compile_features(llama-bench PRIVATE cxx_std_17)
set_target_properties(llama-bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY "$out/bin")
CMAKE
cmake -S "$out/wrapper" -B "$out/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DBUILD_SHARED_LIBS=OFF \
  -DCMAKE_PROJECT_INCLUDE="$repo/.cargo/no-amx.cmake" >&2
nice -n 10 cmake --build "$out/cmake" --target llama-bench -j "${BUILD_JOBS:-2}" >&2
echo "$bin"
