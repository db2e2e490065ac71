#!/usr/bin/env bash
# LLM speed, side by side with llama.cpp's own tool, as ratios (target >= 0.95):
#   - pp512 / tg64 tokens/s of the voxd-llm worker (its `bench` request: the
#     same decode loop llama-bench runs, on voxd's context settings) against
#     `llama-bench` built from the same llama.cpp source (see
#     bench/llm-build-llama-bench.sh), same GGUF, same threads, same batch;
#   - generation tokens/s of a real `generate` over the socket, timed at the
#     client (first to last `llm.token` event) at stated context depths,
#     against `llama-bench -d` at the same depth, alternating, medians;
#   - time to first token of a follow-up turn with and without KV reuse.
#
#   bash bench/llm.sh    # THREADS=2 REPS=5 RUNS=5 DEPTHS=0,512 MODEL=<gguf> to change
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/voxd/target}"
threads="${THREADS:-2}"
reps="${REPS:-5}"
runs="${RUNS:-5}"
depths="${DEPTHS:-0,512}"
model="${MODEL:-${VOXD_TEST_MODELS:-$HOME/.cache/voxd/test-models}/gemma3-270m-base/gemma-3-270m-q4_k_m.gguf}"
[[ -f "$model" ]] || { echo "no model at $model: run scripts/bootstrap.sh test or set MODEL" >&2; exit 1; }

echo "building voxd and voxd-llm (release)" >&2
cargo build --release --locked --workspace >&2
llama_bench="$(bash bench/llm-build-llama-bench.sh)"

exec python3 bench/llm_bench.py \
  --llama-bench "$llama_bench" \
  --voxd "$CARGO_TARGET_DIR/release/voxd" \
  --worker "$CARGO_TARGET_DIR/release/voxd-llm" \
  --model "$model" --threads "$threads" --reps "$reps" --runs "$runs" --depths "$depths"
