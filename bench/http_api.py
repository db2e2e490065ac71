#!/usr/bin/env python3
"""The HTTP API's cost, as its clients see it (issue 24).

    python3 bench/http_api.py [--voxd PATH] [--runs 7]

A fresh release daemon (temporary home, the test model store, the fixture
notes, the `tiny` profile's defaults, `[http] listen` on a free loopback
port) answers:

1. the same question over the control socket (`ask`) and over
   `/v1/chat/completions` (the `openai` package, streamed): time to the
   first answer text and to the end, alternating socket and HTTP, --runs
   rounds, medians; the HTTP path's overhead is the ratio;
2. `/v1/audio/speech` for a three-sentence text, streamed (the `openai`
   package's streaming response): time to the first byte against the
   time to the last, which is what the whole text costs without
   streaming; medians over --runs.

The model is the test store's base Gemma 3 270M (offline); the answer mode
is the profile's (`auto`). Builds nothing: pass the release binary
(default $CARGO_TARGET_DIR/release/voxd); the `openai` package comes from
the tests' Python ($VOXD_TEST_PYTHON, as `bash scripts/bootstrap.sh test`
installs it), which this script re-runs itself under when needed.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What is the wifi password?"
SPEECH = (
    "The kettle is in the kitchen. The spare key hangs by the back door. "
    "The bins go out on Tuesday night."
)

try:
    import openai
except ImportError:
    python = os.environ.get("VOXD_TEST_PYTHON", str(Path.home() / ".cache/voxd/test-venv/bin/python"))
    if Path(python).is_file() and sys.executable != python:
        os.execv(python, [python, *sys.argv])
    sys.exit("the openai package is missing: run `bash scripts/bootstrap.sh test` first")

from latency import Conn  # noqa: E402  (the socket client bench/latency.py uses)


def socket_ask(conn):
    """(first text, end) in seconds, over the socket."""
    started = time.monotonic()
    sent = conn.send("ask", question=QUESTION)
    first = None
    for line in conn.lines:
        msg = json.loads(line)
        if msg.get("id") != sent:
            continue
        if msg.get("event") == "ask.token" and first is None:
            first = time.monotonic() - started
        elif "event" not in msg:
            end = time.monotonic() - started
            if not msg.get("ok"):
                sys.exit(f"ask: {msg}")
            return first if first is not None else end, end
    sys.exit("voxd closed the connection during ask")


def http_ask(client):
    """(first text, end) in seconds, over /v1/chat/completions, streamed."""
    started = time.monotonic()
    first = None
    for chunk in client.chat.completions.create(
        model="voxd", stream=True, messages=[{"role": "user", "content": QUESTION}]
    ):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.monotonic() - started
    end = time.monotonic() - started
    return first if first is not None else end, end


def speech(client):
    """(first byte, last byte) in seconds of a streamed /v1/audio/speech."""
    started = time.monotonic()
    first = None
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=SPEECH, response_format="wav"
    ) as response:
        for _ in response.iter_bytes(4096):
            if first is None:
                first = time.monotonic() - started
    return first, time.monotonic() - started


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/voxd/target"))
    ap.add_argument("--voxd", default=str(Path(target) / "release/voxd"))
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    if not Path(args.voxd).is_file():
        sys.exit(f"no voxd at {args.voxd}: cargo build --release --workspace first")
    store = Path(os.environ.get("VOXD_TEST_MODELS", Path.home() / ".cache/voxd/test-models"))
    home = Path(tempfile.mkdtemp(prefix="voxd-http-"))
    port = free_port()
    config = home / "voxd.toml"
    config.write_text(
        f'profile = "tiny"\n'
        f'[models]\ndir = "{store}"\nsources = ["pypi"]\n'
        f'[rag]\nnotes = ["{ROOT / "tests/fixtures/notes"}"]\nindex = "{home / "index.sqlite"}"\n'
        f'[conversation]\nhistory = "{home / "history.sqlite"}"\n'
        f'[tts]\nvoice = "piper-en_US-joe-medium"\n[audio]\noutput = "null"\n'
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXD_")}
    env.update(XDG_RUNTIME_DIR=str(home / "run"), XDG_DATA_HOME=str(home / "data"),
               XDG_CACHE_HOME=str(home / "cache"), XDG_CONFIG_HOME=str(home / "config"))
    (home / "run").mkdir(mode=0o700)
    log = open(home / "voxd.log", "w")
    proc = subprocess.Popen([args.voxd, "--config", str(config), "serve"], env=env, stderr=log)
    try:
        sock = home / "run/voxd/voxd.sock"
        for _ in range(400):
            if sock.exists():
                break
            time.sleep(0.05)
        conn = Conn(sock)
        while conn.call("notes", action="status")["indexing"] or not conn.call("notes", action="status")["files"]:
            time.sleep(0.2)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        # Warm both paths (model load, voice load) before timing.
        socket_ask(conn)
        http_ask(client)
        speech(client)
        rows = {"socket": [], "http": []}
        for _ in range(args.runs):
            rows["socket"].append(socket_ask(conn))
            rows["http"].append(http_ask(client))
        spoken = [speech(client) for _ in range(args.runs)]
    finally:
        proc.terminate()
        proc.wait()
    med = lambda values: statistics.median(values) * 1000
    load = os.getloadavg()[0]
    print(f"\nask, {args.runs} rounds alternating, medians (load average {load:.2f}):")
    print("| path | first text ms | end ms |\n|---|---|---|")
    for path in ("socket", "http"):
        print(f"| {path} | {med([r[0] for r in rows[path]]):.0f} | {med([r[1] for r in rows[path]]):.0f} |")
    print(f"| http / socket | {med([r[0] for r in rows['http']]) / med([r[0] for r in rows['socket']]):.2f}x"
          f" | {med([r[1] for r in rows['http']]) / med([r[1] for r in rows['socket']]):.2f}x |")
    first, last = med([s[0] for s in spoken]), med([s[1] for s in spoken])
    print(f"\n/v1/audio/speech, 3 sentences, medians of {args.runs}: first byte {first:.0f} ms,"
          f" last byte {last:.0f} ms ({first / last:.2f}x)")


if __name__ == "__main__":
    main()
