#!/bin/sh
# Speak text through voxd, talking JSON lines to its socket with socat: the
# protocol any language can speak (docs/protocol.md).
#
#   examples/say.sh "The tea is ready."
set -eu
[ $# -eq 1 ] || { echo "usage: $0 TEXT" >&2; exit 2; }
socket="${VOXD_SOCKET:-${XDG_RUNTIME_DIR:-/tmp}/voxd/voxd.sock}"
request=$(jq -cn --arg text "$1" '{id: 1, cmd: "say", text: $text}')
# The reply comes once the text has been spoken; socat waits for it (-t).
reply=$(printf '%s\n' "$request" | socat -t 120 - "UNIX-CONNECT:$socket")
echo "$reply" | jq -e '.ok' >/dev/null || { echo "voxd: $reply" >&2; exit 1; }
echo "$reply" | jq -r '"spoke \(.result.chunks) sentence(s)"'
