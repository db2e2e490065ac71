#!/usr/bin/env bash
# Generates the speech clips the STT tests and benchmark use, from
# tests/fixtures/stt/sentences.txt, into a cache directory (never into git):
#
#   espeak/NN.wav   espeak-ng, voices and rates varied per sentence
#   piper/NN.wav    the Piper voice en_US-joe-medium (Python piper-tts)
#   snr20/NN.wav    piper/NN.wav + white noise at 20 dB SNR (sox)
#   snr10/NN.wav    piper/NN.wav + white noise at 10 dB SNR (sox)
#   long.wav        every Piper clip in a row (for the partials and bench)
#
# Usage: scripts/stt-test-audio.sh OUT_DIR PIPER_MODEL_DIR PYTHON
# Idempotent: a complete OUT_DIR (marked by .complete) is left alone.
set -euo pipefail

out="$1"
piper_dir="$2"
python="$3"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sentences="$repo/tests/fixtures/stt/sentences.txt"

if [[ -f "$out/.complete" && "$out/.complete" -nt "$sentences" && "$out/.complete" -nt "${BASH_SOURCE[0]}" ]]; then
  exit 0
fi
rm -rf "$out.tmp"
mkdir -p "$out.tmp"/{espeak,piper,snr20,snr10}

voices=(en-us en-gb en-us+m3 en-gb-x-rp en-us+f3)
rates=(150 165 175 160 140)
i=0
while IFS= read -r line; do
  [[ -z "$line" || "$line" == \#* ]] && continue
  n=$(printf '%02d' "$i")
  printf '%s\n' "$line" > "$out.tmp/$n.txt"
  espeak-ng -v "${voices[i % 5]}" -s "${rates[i % 5]}" -w "$out.tmp/espeak/$n.wav" "$line"
  printf '%s\n' "$line" | "$python" -m piper --model "$piper_dir/en_US-joe-medium.onnx" \
    --output_file "$out.tmp/piper/$n.wav" >/dev/null 2>&1
  # Noise at a given SNR: white noise scaled to the speech's RMS level.
  speech_rms=$(sox "$out.tmp/piper/$n.wav" -n stat 2>&1 | awk '/RMS +amplitude/ {print $3}')
  dur=$(sox --i -D "$out.tmp/piper/$n.wav")
  rate=$(sox --i -r "$out.tmp/piper/$n.wav")
  sox -n -r "$rate" -c 1 -b 16 "$out.tmp/noise.wav" synth "$dur" whitenoise vol 0.5
  noise_rms=$(sox "$out.tmp/noise.wav" -n stat 2>&1 | awk '/RMS +amplitude/ {print $3}')
  for snr in 20 10; do
    gain=$(awk -v s="$speech_rms" -v n="$noise_rms" -v db="$snr" 'BEGIN { printf "%.6f", s / n / 10 ^ (db / 20) }')
    sox -m -v 1 "$out.tmp/piper/$n.wav" -v "$gain" "$out.tmp/noise.wav" "$out.tmp/snr$snr/$n.wav"
  done
  i=$((i + 1))
done < "$sentences"
rm -f "$out.tmp/noise.wav"
sox "$out.tmp"/piper/*.wav "$out.tmp/long.wav"
touch "$out.tmp/.complete"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "generated $i sentences × 4 sets in $out" >&2
