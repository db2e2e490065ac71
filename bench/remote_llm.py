#!/usr/bin/env python3
"""The language model on a server (issue 25): what going through
llama-server costs, against the local worker, on the same GGUF, threads,
context and prompts.

    python3 bench/remote_llm.py [--voxd PATH] [--llama-server PATH] [--runs 7] [--threads 2]

One llama-server (scripts/llama-server.sh: the llama.cpp voxd-llm runs)
serves the test store's base Gemma 3 270M with --threads, 2048 tokens of
context, one slot. Two release daemons run the `tiny` profile's defaults
otherwise: `local` (the voxd-llm worker, the same threads and context) and
`remote` (engines.llm.backend = "openai" on that server). Then, each
measured --runs times in alternation, medians:

1. one 64-token reply: time to the first token and tokens/s (after the
   first), seen by the client: `generate` over the socket through `local`
   and through `remote`; `/v1/completions` and `/v1/chat/completions`
   of `local`'s HTTP API on the raw model (issue 24's figure; both
   servers given Gemma's chat template, which the base GGUF lacks); and
   llama-server's own streams of the same, read here (`direct`). voxd's overhead on the
   remote path is remote minus direct;
2. a follow-up on the server: a 450-token prompt, then the same prompt
   with a question added (a stable prefix: the server reuses its KV
   cache), against a follow-up whose first line differs from the prompt
   before it (an unstable prefix, as with the time put first: nothing
   reused), time to first token.

Builds nothing: pass the release binary (default
$CARGO_TARGET_DIR/release/voxd) and llama-server (default
$VOXD_TEST_LLAMA_SERVER, which `bash scripts/bootstrap.sh test` sets).
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
import urllib.request
from pathlib import Path

from latency import Conn  # the socket client bench/latency.py uses

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gemma3-270m-base"
GGUF = "gemma-3-270m-q4_k_m.gguf"
PROMPT = "Once upon a time, in a small village by the sea, there lived"
CHAT = "Count from 1 to 200, separated by commas: 1, 2, 3,"
NOTES = "Notes. " + "The blue door on the north side of the old mill opens only in winter. " * 28
QUESTION = "Question: which door opens in winter? Answer:"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, what, proc):
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"{what} exited")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"{what} did not come up")


def daemon(voxd, home, store, threads, llm, http=""):
    """A release `voxd serve` in `home`; its socket connection and process."""
    home.mkdir()
    config = home / "voxd.toml"
    config.write_text(
        f'profile = "tiny"\n'
        f'[models]\ndir = "{store}"\nsources = ["pypi"]\nllm = ["{MODEL}"]\n'
        f'[engines]\nidle_unload_secs = 0\n'
        f'[engines.llm]\nthreads = {threads}\ncontext = 2048\nmax_tokens = 64\n{llm}\n'
        f'[rag]\nnotes = []\n[audio]\noutput = "null"\n{http}'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXD_")}
    env.update(XDG_RUNTIME_DIR=str(home / "run"), XDG_DATA_HOME=str(home / "data"),
               XDG_CACHE_HOME=str(home / "cache"), XDG_CONFIG_HOME=str(home / "config"))
    (home / "run").mkdir(mode=0o700)
    proc = subprocess.Popen([voxd, "--config", str(config), "serve"], env=env,
                            stderr=open(home / "voxd.log", "w"))
    sock = home / "run/voxd/voxd.sock"
    for _ in range(400):
        if sock.exists():
            break
        time.sleep(0.05)
    return Conn(sock), proc


def via_voxd(conn, prompt, max_tokens=64):
    """(first token s, tokens/s after it, cached prompt tokens), seen by the client."""
    started = time.monotonic()
    sent = conn.send("generate", prompt=prompt, max_tokens=max_tokens, stop=[])
    first, n = None, 0
    for line in conn.lines:
        msg = json.loads(line)
        if msg.get("id") != sent:
            continue
        if msg.get("event") == "llm.token":
            n += 1
            first = first or time.monotonic()
            continue
        end = time.monotonic()
        if not msg["ok"]:
            sys.exit(f"generate failed: {msg['error']}")
        return first - started, (n - 1) / (end - first), msg["result"]["stats"]["cached_tokens"]
    sys.exit("voxd closed the connection")


def direct(url, prompt, max_tokens=64, model=None, chat=False):
    """The same, from an OpenAI `/v1/completions` stream, or with `chat`
    `/v1/chat/completions` (llama-server's, or voxd's HTTP API's for
    `model`)."""
    body = {"max_tokens": max_tokens, "temperature": 0, "stream": True, "cache_prompt": True}
    body |= {"messages": [{"role": "user", "content": prompt}]} if chat else {"prompt": prompt}
    if model:
        body["model"] = model
    body = json.dumps(body).encode()
    path = "/v1/chat/completions" if chat else "/v1/completions"
    request = urllib.request.Request(f"{url}{path}", body, {"Content-Type": "application/json"})
    started = time.monotonic()
    first, n = None, 0
    with urllib.request.urlopen(request) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            choice = (json.loads(line[5:]).get("choices") or [{}])[0]
            if choice.get("text") or (choice.get("delta") or {}).get("content"):
                n += 1
                first = first or time.monotonic()
    end = time.monotonic()
    return first - started, (n - 1) / (end - first), None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/voxd/target"))
    ap.add_argument("--voxd", default=str(Path(target) / "release/voxd"))
    ap.add_argument("--llama-server", default=os.environ.get("VOXD_TEST_LLAMA_SERVER", ""))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    for path, what in ((args.voxd, "cargo build --release --workspace"),
                       (args.llama_server, "bash scripts/llama-server.sh")):
        if not path or not Path(path).is_file():
            sys.exit(f"missing {path!r}: run `{what}` first")
    store = Path(os.environ.get("VOXD_TEST_MODELS", Path.home() / ".cache/voxd/test-models"))
    home = Path(tempfile.mkdtemp(prefix="voxd-remote-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([args.llama_server, "-m", str(store / MODEL / GGUF), "--host", "127.0.0.1",
                               "--port", str(port), "-t", str(args.threads), "-c", "2048", "-np", "1",
                               "--chat-template", "gemma"],
                              stdout=subprocess.DEVNULL, stderr=open(home / "server.log", "w"))
    procs = [server]
    try:
        wait_http(f"{url}/health", "llama-server", server)
        api = free_port()
        local, p1 = daemon(args.voxd, home / "local", store, args.threads, 'chat_template = "gemma"',
                           f'[http]\nlisten = "127.0.0.1:{api}"\n')
        remote, p2 = daemon(args.voxd, home / "remote", store, args.threads,
                            f'backend = "openai"\nurl = "{url}/v1"\n')
        procs += [p1, p2]
        voxd_api = f"http://127.0.0.1:{api}"
        paths = {"local": lambda: via_voxd(local, PROMPT), "remote": lambda: via_voxd(remote, PROMPT),
                 "http": lambda: direct(voxd_api, PROMPT, model=MODEL),
                 "direct": lambda: direct(url, PROMPT),
                 "http chat": lambda: direct(voxd_api, CHAT, model=MODEL, chat=True),
                 "direct chat": lambda: direct(url, CHAT, chat=True)}
        for run in paths.values():  # load the model, warm the caches
            run()
        rows = {name: [] for name in paths}
        for _ in range(args.runs):
            for name, run in paths.items():
                rows[name].append(run())

        # Follow-ups on the server: stable against unstable prefix.
        follow = {"stable": [], "unstable": []}
        for i in range(args.runs):
            for kind in follow:
                # Unstable: the follow-up differs from what came before in
                # its first line, as a prompt that puts the time first would.
                first, then = ((f"Run {i}.\n{NOTES}", f"Run {i}.\n{NOTES}{QUESTION}") if kind == "stable"
                               else (f"Run {i}a.\n{NOTES}", f"Run {i}b.\n{NOTES}{QUESTION}"))
                via_voxd(remote, first, max_tokens=1)
                follow[kind].append(via_voxd(remote, then, max_tokens=8))
    finally:
        for p in procs:
            p.terminate()
            p.wait()
    med = lambda values: statistics.median(values)
    load = os.getloadavg()[0]
    print(f"\n64-token reply, {args.runs} rounds alternating, {args.threads} threads, medians"
          f" (load average {load:.2f}):")
    print("| path | first token ms | tokens/s |\n|---|---|---|")
    for name in rows:
        print(f"| {name} | {med([r[0] for r in rows[name]]) * 1000:.0f} | {med([r[1] for r in rows[name]]):.1f} |")
    overhead = (med([r[0] for r in rows["remote"]]) - med([r[0] for r in rows["direct"]])) * 1000
    print(f"| remote / local | {med([r[0] for r in rows['remote']]) / med([r[0] for r in rows['local']]):.2f}x"
          f" | {med([r[1] for r in rows['remote']]) / med([r[1] for r in rows['local']]):.2f}x |")
    for a, b in (("http", "direct"), ("http chat", "direct chat")):
        print(f"| {a} / {b} | {med([r[0] for r in rows[a]]) / med([r[0] for r in rows[b]]):.2f}x"
              f" | {med([r[1] for r in rows[a]]) / med([r[1] for r in rows[b]]):.2f}x |")
    print(f"\nvoxd's overhead on the remote path (remote - direct, first token): {overhead:.0f} ms")
    print(f"\nfollow-up on the server, {args.runs} rounds, medians:")
    print("| prefix | first token ms | cached prompt tokens |\n|---|---|---|")
    for kind, values in follow.items():
        print(f"| {kind} | {med([v[0] for v in values]) * 1000:.0f} | {med([v[2] for v in values]):.0f} |")


if __name__ == "__main__":
    main()
