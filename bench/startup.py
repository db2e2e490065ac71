#!/usr/bin/env python3
"""Daemon start-up benchmark: time from `voxd serve` to a socket that
answers `ping`, and the idle daemon's resident memory.

    python3 bench/startup.py [--voxd PATH] [--runs N]

Builds nothing: pass the release binary (default
$CARGO_TARGET_DIR/release/voxd, else ~/.cache/voxd/target/release/voxd).
Targets (issue 3): < 100 ms to ready, < 20 MB idle RSS.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time


def default_binary():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/voxd/target")
    return os.path.join(target, "release", "voxd")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def one_run(voxd, home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXD_")}
    env.update(HOME=home, XDG_RUNTIME_DIR=os.path.join(home, "run"),
               XDG_CONFIG_HOME=os.path.join(home, "config"))
    os.makedirs(env["XDG_RUNTIME_DIR"], exist_ok=True)
    sock_path = os.path.join(env["XDG_RUNTIME_DIR"], "voxd", "voxd.sock")
    start = time.perf_counter()
    proc = subprocess.Popen([voxd, "serve", "--log-format", "text"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(sock_path)
                    s.sendall(b'{"id":1,"cmd":"ping"}\n')
                    reply = json.loads(s.makefile().readline())
                    assert reply["ok"], reply
                    break
            except (FileNotFoundError, ConnectionRefusedError):
                if proc.poll() is not None:
                    raise RuntimeError(f"voxd exited with {proc.returncode}")
                time.sleep(0.0005)
        ready = time.perf_counter() - start
        time.sleep(1.0)  # idle
        rss = rss_kib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    return ready, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voxd", default=default_binary())
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    readies, rsss = [], []
    with tempfile.TemporaryDirectory() as home:
        for _ in range(args.runs):
            ready, rss = one_run(args.voxd, home)
            readies.append(ready * 1000)
            rsss.append(rss / 1024)
    print(f"voxd: {args.voxd}  runs: {args.runs}  cores: {os.cpu_count()}")
    print("metric                 median    min     max    target")
    print(f"serve → ping answered  {statistics.median(readies):6.1f}  {min(readies):6.1f}  {max(readies):6.1f}  ms  < 100 ms")
    print(f"idle RSS               {statistics.median(rsss):6.1f}  {min(rsss):6.1f}  {max(rsss):6.1f}  MB  < 20 MB")


if __name__ == "__main__":
    main()
