#!/usr/bin/env bash
# Generates the speech clips the STT tests and benchmark use, from
# tests/fixtures/stt/sentences.txt, into a cache directory (never into git):
#
#   espeak/NN.wav   espeak-ng, voices and rates varied per sentence
#   piper/NN.wav    the Piper voice en_US-joe-medium (Python piper-tts)
#   snr20/NN.wav    piper/NN.wav + white noise at 20 dB SNR (sox)
#   snr10/NN.wav    piper/NN.wav + white noise at 10 dB SNR (sox)
#   long.wav        every Piper clip in a row (for the partials and bench)
#   wake/NN.wav     1.5 s silence, "Hey Jarvis.", 0.4 s pause, a question from
#                   tests/fixtures/listen/questions.txt, 2.5 s silence; 16 kHz
#                   mono; Piper for even NN, espeak-ng voices/rates for odd NN.
#                   wake/NN.txt is the question, wake/NN.times its start and
#                   end in seconds (speech trimmed of its own silence).
#
# Every clip is the same on every run and machine: Piper renders without its
# random noise (--noise-scale 0 --noise-w-scale 0) and sox's noise and
# dither are repeatable (-R, in SOX_OPTS). With Piper's noise, each fresh
# clone rendered new clips and a test's word error rate was a draw (one
# clip put Whisper 2 % over its threshold).
#
# Usage: scripts/stt-test-audio.sh OUT_DIR PIPER_MODEL_DIR PYTHON
# Idempotent: a complete OUT_DIR whose .complete holds the hash of this
# script and its inputs is left alone.
set -euo pipefail
export SOX_OPTS="-R"

out="$1"
piper_dir="$2"
python="$3"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sentences="$repo/tests/fixtures/stt/sentences.txt"
questions="$repo/tests/fixtures/listen/questions.txt"

# By content, not modification time: a fresh clone's files are all new.
key=$(cat "${BASH_SOURCE[0]}" "$sentences" "$questions" | sha256sum | cut -d' ' -f1)
if [[ -f "$out/.complete" && "$(cat "$out/.complete")" == "$key" ]]; then
  exit 0
fi
rm -rf "$out.tmp"
mkdir -p "$out.tmp"/{espeak,piper,snr20,snr10,wake}

voices=(en-us en-gb en-us+m3 en-gb-x-rp en-us+f3)
rates=(150 165 175 160 140)
i=0
while IFS= read -r line; do
  [[ -z "$line" || "$line" == \#* ]] && continue
  n=$(printf '%02d' "$i")
  printf '%s\n' "$line" > "$out.tmp/$n.txt"
  espeak-ng -v "${voices[i % 5]}" -s "${rates[i % 5]}" -w "$out.tmp/espeak/$n.wav" "$line"
  printf '%s\n' "$line" | "$python" -m piper --model "$piper_dir/en_US-joe-medium.onnx" \
    --noise-scale 0 --noise-w-scale 0 --output_file "$out.tmp/piper/$n.wav" >/dev/null 2>&1
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

# Wake-word clips. speak VOICE RATE TEXT OUT: 16 kHz mono speech trimmed of
# its leading and trailing silence.
speak() {
  local raw="$out.tmp/raw.wav"
  if [[ "$1" == piper ]]; then
    printf '%s\n' "$3" | "$python" -m piper --model "$piper_dir/en_US-joe-medium.onnx" \
      --noise-scale 0 --noise-w-scale 0 --output_file "$raw" >/dev/null 2>&1
  else
    espeak-ng -v "$1" -s "$2" -w "$raw" "$3"
  fi
  sox "$raw" -r 16000 -c 1 -b 16 "$4" silence 1 0.01 -45d reverse silence 1 0.01 -45d reverse
  rm -f "$raw"
}
wake_voices=(piper en-us piper en-gb-x-rp piper en-us+f3 piper en-gb)
wake_rates=(0 160 0 150 0 170 0 155)
j=0
while IFS= read -r line; do
  [[ -z "$line" || "$line" == \#* ]] && continue
  n=$(printf '%02d' "$j")
  speak "${wake_voices[j % 8]}" "${wake_rates[j % 8]}" "Hey Jarvis." "$out.tmp/w.wav"
  speak "${wake_voices[j % 8]}" "${wake_rates[j % 8]}" "$line" "$out.tmp/q.wav"
  sox -n -r 16000 -c 1 -b 16 "$out.tmp/lead.wav" trim 0 1.5
  sox -n -r 16000 -c 1 -b 16 "$out.tmp/gap.wav" trim 0 0.4
  sox -n -r 16000 -c 1 -b 16 "$out.tmp/tail.wav" trim 0 2.5
  sox "$out.tmp/lead.wav" "$out.tmp/w.wav" "$out.tmp/gap.wav" "$out.tmp/q.wav" "$out.tmp/tail.wav" \
    "$out.tmp/wake/$n.wav"
  printf '%s\n' "$line" > "$out.tmp/wake/$n.txt"
  awk -v w="$(sox --i -D "$out.tmp/w.wav")" -v q="$(sox --i -D "$out.tmp/q.wav")" \
    'BEGIN { s = 1.5 + w + 0.4; printf "%.3f %.3f\n", s, s + q }' > "$out.tmp/wake/$n.times"
  j=$((j + 1))
done < "$questions"
rm -f "$out.tmp"/{w,q,lead,gap,tail}.wav
printf '%s\n' "$key" > "$out.tmp/.complete"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "generated $i sentences × 4 sets and $j wake-word clips in $out" >&2
