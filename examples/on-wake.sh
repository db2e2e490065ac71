#!/bin/sh
# React to the wake word: run a command each time voxd hears it (here:
# log the wake word and its score). `voxd subscribe` prints one JSON event
# per line.
#
#   examples/on-wake.sh            # runs until interrupted
#   examples/on-wake.sh 1          # stops after the first wake word
set -eu
limit="${1:-0}"
seen=0
voxd subscribe wake.detected | while read -r event; do
    name=$(printf '%s' "$event" | jq -r '.data.name')
    score=$(printf '%s' "$event" | jq -r '.data.score')
    echo "woken by \"$name\" (score $score)"
    seen=$((seen + 1))
    if [ "$limit" -gt 0 ] && [ "$seen" -ge "$limit" ]; then
        exit 0
    fi
done
