#!/usr/bin/env bash
# Sets up everything voxd needs on a fresh Debian/Ubuntu machine, then either
# runs the daemon or runs the whole test suite. Idempotent: a second run only
# checks, and builds incrementally.
#
#   bash scripts/bootstrap.sh run    # set up, pull the default models, run `voxd serve`
#   bash scripts/bootstrap.sh test   # set up, then fmt + clippy + every test
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
# llama-cpp-sys-2 builds llama.cpp with cmake and generates bindings with bindgen.
APT_PACKAGES+=(cmake clang libclang-dev)
# Models the tests run (manifest ids), pulled into $VOXD_TEST_MODELS.
TEST_MODELS=(silero-vad)
TEST_MODELS+=(gemma3-270m-base)
# Python packages the tests run (pinned): gguf writes a GGUF with a chat template.
TEST_PIP_PACKAGES=("gguf==0.19.0")

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

install_rust() {
  if command -v cargo >/dev/null 2>&1; then
    say "rust: $(cargo --version)"
  else
    say "installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    # shellcheck disable=SC1091
    source "$HOME/.cargo/env"
  fi
  if [[ "$mode" == test ]] && ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add clippy rustfmt
  fi
}

install_apt_packages
install_rust

if [[ "$mode" == run ]]; then
  say "building voxd (release) in $CARGO_TARGET_DIR"
  cargo build --workspace --release --locked
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
say "building the workspace (tests start the worker binaries)"
cargo build --workspace --locked
test_models="${VOXD_TEST_MODELS:-$HOME/.cache/voxd/test-models}"
say "pulling the test models into $test_models: ${TEST_MODELS[*]}"
env -u VOXD_TEST_MODELS VOXD_MODELS_DIR="$test_models" "$CARGO_TARGET_DIR/debug/voxd" models pull "${TEST_MODELS[@]}"
export VOXD_TEST_MODELS="$test_models"
say "python packages for the tests: ${TEST_PIP_PACKAGES[*]}"
python3 -m pip install -q --disable-pip-version-check "${TEST_PIP_PACKAGES[@]}" \
  || python3 -m pip install -q --disable-pip-version-check --break-system-packages "${TEST_PIP_PACKAGES[@]}"
say "running the tests"
cargo test --workspace --locked
say "all tests passed"
