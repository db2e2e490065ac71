#!/usr/bin/env python3
"""Daemon start-up and idle memory (issue 21): time from `voxd serve` to a
socket that answers `ping`, and the idle daemon's resident memory, in
three homes:

  empty    no models installed, no notes
  models   the `tiny` profile's models installed (the test store), no notes
  notes    the same models and a folder of --notes generated notes, indexed

    python3 bench/startup.py [--voxd PATH] [--runs N] [--notes 1000]
                             [--questions 10] [--only empty|models|notes]

In `notes`, RSS is read three times: once the notes are indexed (the
embedder loaded, the sentence embeddings stored); after the daemon has
been idle past `rag.idle_unload_secs` (the embedder dropped); and after
--questions spoken-free questions (`ask` over the socket, the extractive
and generative paths alike) once every engine and the embedder unloaded
again (idle past `engines.idle_unload_secs`).

Builds nothing: pass the release binary (default
$CARGO_TARGET_DIR/release/voxd, else ~/.cache/voxd/target/release/voxd);
models come from $VOXD_TEST_MODELS (default ~/.cache/voxd/test-models, as
`bash scripts/bootstrap.sh test` pulls them).
Targets: < 100 ms to ready; < 30 MiB idle with no notes configured.
"""

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rag import Conn, make_corpus  # noqa: E402  (the same client and notes as bench/rag.py)

QUESTIONS = ["What is the dentist code?", "Who said the bakery cost?", "When is the concert?",
             "What does Alice remember?", "What is the museum code?"]


def default_binary():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/voxd/target")
    return os.path.join(target, "release", "voxd")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Daemon:
    """`voxd serve` in a home of its own; `ready_ms` is serve → ping answered."""

    def __init__(self, voxd, home, config=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOXD_")}
        env.update(HOME=home, XDG_RUNTIME_DIR=os.path.join(home, "run"),
                   XDG_CONFIG_HOME=os.path.join(home, "config"), XDG_DATA_HOME=os.path.join(home, "data"),
                   XDG_CACHE_HOME=os.path.join(home, "cache"))
        os.makedirs(env["XDG_RUNTIME_DIR"], exist_ok=True)
        sock = os.path.join(env["XDG_RUNTIME_DIR"], "voxd", "voxd.sock")
        argv = [voxd] + (["--config", config] if config else []) + ["serve", "--log-format", "text"]
        start = time.perf_counter()
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(home, "voxd.log"), "a"))
        while True:
            try:
                self.conn = Conn(sock)
                self.conn.call("ping")
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if self.proc.poll() is not None:
                    sys.exit(f"voxd exited with {self.proc.returncode}; see {home}/voxd.log")
                time.sleep(0.0005)
        self.ready_ms = (time.perf_counter() - start) * 1000

    def call(self, cmd, **args):
        msg = self.conn.call(cmd, **args)
        if not msg["ok"]:
            sys.exit(f"voxd {cmd}: {msg['error']}")
        return msg["result"]

    def rss(self):
        return rss_mib(self.proc.pid)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def config_with_models(home, store, notes=None):
    path = os.path.join(home, "voxd.toml")
    with open(path, "w") as f:
        f.write(f'profile = "tiny"\n[models]\ndir = "{store}"\nsources = ["pypi"]\n'
                f'[tts]\nvoice = "piper-en_US-joe-medium"\n[audio]\noutput = "null"\n')
        if notes:
            f.write(f'[rag]\nnotes = ["{notes}"]\n')
    return path


def idle_rows(voxd, runs, store):
    """Start-up time and idle RSS (1 s after ready) of `runs` starts."""
    for name, with_models in [("empty", False), ("models", True)]:
        if ONLY and name not in ONLY:
            continue
        readies, rsss = [], []
        with tempfile.TemporaryDirectory() as home:
            config = config_with_models(home, store) if with_models else None
            for _ in range(runs):
                d = Daemon(voxd, home, config)
                time.sleep(1.0)
                readies.append(d.ready_ms)
                rsss.append(d.rss())
                d.stop()
        yield (f"{name}: serve → ping answered", readies, "ms")
        yield (f"{name}: idle RSS", rsss, "MiB")


def wait_idle(d, engines_secs):
    """Waits until the engines and the embedder have unloaded."""
    deadline = time.time() + engines_secs + 120
    while time.time() < deadline:
        status = d.call("status")
        notes = d.call("notes", action="status")
        busy = [e for e in status["engines"] if e["state"] not in ("stopped",)]
        if not busy and not notes["embedder_loaded"] and not notes["indexing"]:
            return
        time.sleep(1)
    sys.exit("the engines or the embedder never unloaded")


def notes_rows(voxd, store, n, questions):
    with tempfile.TemporaryDirectory() as home:
        notes = os.path.join(home, "notes")
        make_corpus(notes, n, random.Random(7))
        d = Daemon(voxd, home, config_with_models(home, store, notes))
        try:
            yield (f"notes ({n}): serve → ping answered", [d.ready_ms], "ms")
            started = time.time()
            while True:
                st = d.call("notes", action="status")
                if (st["files"] == n and not st["indexing"]
                        and st["embedded_sentences"] == st["sentences"]):
                    break
                time.sleep(0.5)
            yield (f"notes ({n}): indexed, sentences embedded (s)", [time.time() - started], "s")
            yield (f"notes ({n}): RSS, just indexed", [d.rss()], "MiB")
            engines_secs = d.call("config")["config"]["engines"]["idle_unload_secs"]
            wait_idle(d, engines_secs)
            yield (f"notes ({n}): idle RSS before any question", [d.rss()], "MiB")
            for i in range(questions):
                d.call("ask", question=QUESTIONS[i % len(QUESTIONS)])
            wait_idle(d, engines_secs)
            yield (f"notes ({n}): idle RSS after {questions} questions, unloaded", [d.rss()], "MiB")
        finally:
            d.stop()


ONLY = []


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voxd", default=default_binary())
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--notes", type=int, default=1000)
    ap.add_argument("--questions", type=int, default=10)
    ap.add_argument("--only", action="append", choices=["empty", "models", "notes"], default=[])
    args = ap.parse_args()
    ONLY.extend(args.only)
    store = os.environ.get("VOXD_TEST_MODELS", os.path.expanduser("~/.cache/voxd/test-models"))
    rows = list(idle_rows(args.voxd, args.runs, store))
    if not ONLY or "notes" in ONLY:
        rows += list(notes_rows(args.voxd, store, args.notes, args.questions))
    print(f"voxd: {args.voxd}  runs: {args.runs}  cores: {os.cpu_count()}  "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| metric | median | min | max |\n|---|---|---|---|")
    for name, values, unit in rows:
        print(f"| {name} | {statistics.median(values):.1f} {unit} | {min(values):.1f} | {max(values):.1f} |")


if __name__ == "__main__":
    main()
