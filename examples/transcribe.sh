#!/bin/sh
# Transcribe WAV files (any rate or channels) with voxd's Whisper, one
# "FILE: text" line each.
#
#   examples/transcribe.sh memo.wav call.wav
set -eu
[ $# -ge 1 ] || { echo "usage: $0 FILE.wav..." >&2; exit 2; }
for wav in "$@"; do
    printf '%s: %s\n' "$wav" "$(voxd transcribe "$wav")"
done
