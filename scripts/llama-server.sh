#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` on the llama.cpp that llama-cpp-sys-2
# vendors (the inference code voxd-llm runs), into a cache directory outside
# the repository, and prints the binary's path. The tests of the remote
# engines and the benches share it.
#
# The crate ships llama.cpp's library (src/, include/, ggml/) but not the
# server. The llama-cpp-python sdist on PyPI ships a whole llama.cpp tree,
# one release older, server included. The build takes that tree for the
# server and what it needs (tools/server, tools/mtmd, common/, vendor/) and
# the crate's for the library, so llama-server runs the same ggml and
# llama code as voxd-llm. No web UI (LLAMA_BUILD_UI and the prebuilt
# download off: nothing is fetched), no TLS, no curl. cmake + ninja, Release,
# GGML_NATIVE=ON and no AMX kernels, as voxd-llm is built
# (.cargo/config.toml, .cargo/no-amx.cmake).
#
#   bash scripts/llama-server.sh   # ~10-20 min on 2 cores the first time, then cached
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

SYS_VERSION="${LLAMA_SYS_VERSION:-0.1.161}"
PY_VERSION="${LLAMA_PY_VERSION:-0.3.36}"
cache="${VOXD_BENCH_CACHE:-$HOME/.cache/voxd}/llama-server"
out="$cache/build-$SYS_VERSION-py$PY_VERSION-noamx"
bin="$out/cmake/bin/llama-server"
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi
say() { printf '==> %s\n' "$*" >&2; }

crate="$(ls -d "$HOME"/.cargo/registry/src/*/llama-cpp-sys-2-"$SYS_VERSION"/llama.cpp 2>/dev/null | head -1)"
if [[ -z "$crate" ]]; then
  (cd "$repo" && cargo fetch --locked >&2)
  crate="$(ls -d "$HOME"/.cargo/registry/src/*/llama-cpp-sys-2-"$SYS_VERSION"/llama.cpp | head -1)"
fi

mkdir -p "$cache"
sdist="$cache/llama_cpp_python-$PY_VERSION.tar.gz"
if [[ ! -f "$sdist" ]]; then
  say "downloading the llama-cpp-python $PY_VERSION sdist (llama-server's sources) from PyPI"
  python3 -m pip download --quiet --no-deps --no-binary :all: \
    "llama-cpp-python==$PY_VERSION" -d "$cache" >&2
fi

# The merged tree: the sdist's llama.cpp with the crate's library swapped in.
tree="$out/src"
if [[ ! -f "$tree/.complete" ]]; then
  rm -rf "$tree"
  mkdir -p "$tree"
  tar -xzf "$sdist" -C "$tree" --strip-components=3 "llama_cpp_python-$PY_VERSION/vendor/llama.cpp"
  for part in src include ggml; do
    rm -rf "${tree:?}/$part"
    cp -a "$crate/$part" "$tree/$part"
  done
  touch "$tree/.complete"
fi

command -v ninja >/dev/null || python3 -m pip install -q "ninja==1.13.0" >&2
say "building llama-server into $out (cached for the next runs)"
cmake -S "$tree" -B "$out/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
  -DCMAKE_PROJECT_INCLUDE="$repo/.cargo/no-amx.cmake" >&2
nice -n 10 cmake --build "$out/cmake" --target llama-server -j "${BUILD_JOBS:-2}" >&2
echo "$bin"
