#!/usr/bin/env python3
"""Ask voxd a question over its Unix socket with only the standard library:
print the answer as it streams, then its citations.

    examples/ask.py "When is Maria's birthday?"
"""
import json
import os
import socket
import sys


def socket_path():
    if "VOXD_SOCKET" in os.environ:
        return os.environ["VOXD_SOCKET"]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "voxd", "voxd.sock")
    return os.path.join(os.environ.get("TMPDIR", "/tmp"), f"voxd-{os.getuid()}", "voxd.sock")


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} QUESTION")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(socket_path())
        s.sendall(json.dumps({"id": 1, "cmd": "ask", "question": sys.argv[1]}).encode() + b"\n")
        for line in s.makefile("r", encoding="utf-8"):
            msg = json.loads(line)
            if msg.get("event") == "ask.token":
                print(msg["data"]["text"], end="", flush=True)
            elif msg.get("event") == "ask.reset":
                print("\n(withdrawn; instead:)")
            elif "ok" in msg:
                if not msg["ok"]:
                    sys.exit(f"voxd: {msg['error']['code']}: {msg['error']['message']}")
                print()
                for c in msg["result"]["citations"]:
                    print(f"[{c['n']}] {c['path']}:{c['line_start']}-{c['line_end']}")
                return


if __name__ == "__main__":
    main()
