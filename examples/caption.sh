#!/bin/sh
# Caption image files with voxd's BLIP model, one "FILE: caption" line each
# (a file that cannot be read gets its reason instead; the rest go on).
#
#   examples/caption.sh photo.jpg
set -eu
[ $# -ge 1 ] || { echo "usage: $0 IMAGE..." >&2; exit 2; }
voxd caption "$@"
