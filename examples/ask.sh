#!/bin/sh
# Ask voxd a question about your notes: the answer streams to the terminal,
# then each source it came from is printed as "source: FILE lines A-B" (a
# script would open them, or grep them).
#
#   examples/ask.sh "What is the wifi password?"
set -eu
[ $# -eq 1 ] || { echo "usage: $0 QUESTION" >&2; exit 2; }
answer=$(mktemp)
trap 'rm -f "$answer"' EXIT
# `voxd ask` prints the answer, an empty line, then `[N] PATH:START-END` lines.
voxd ask "$1" | tee "$answer"
echo "---"
sed -n 's/^\[[0-9]*\] \(.*\):\([0-9]*\)-\([0-9]*\)$/source: \1 lines \2-\3/p' "$answer"
