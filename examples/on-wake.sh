#!/bin/sh
# React to the wake word: run a command each time voxd hears it (here:
# log the wake word and its score). `voxd subscribe` prints one JSON event
# per line.
#
#   examples/on-wake.sh            # runs until interrupted
#   examples/on-wake.sh 1          # stops after the first wake word
set -eu
if [ $# -gt 0 ]; then
    set -- --count "$1"
fi
voxd subscribe "$@" wake.detected | while read -r event; do
    name=$(printf '%s' "$event" | jq -r '.data.name')
    score=$(printf '%s' "$event" | jq -r '.data.score')
    echo "woken by \"$name\" (score $score)"
done
