#!/usr/bin/env python3
"""User command match time against the number of templates (issue 26).

    python3 bench/commands.py [--voxd PATH] [--runs 200]

A fresh daemon (temporary home, no models: matching needs none) reads a
generated commands.toml of 10, 100 and 1,000 commands, one template each,
shaped like real ones: alternatives, an optional word, a list slot (20
values) and a number slot, every command with its own verb. For each size
it sends `commands test` --runs times for three texts: one the *last*
command matches (every template is tried before it wins), one with a
transcription error in the list value, and one that matches nothing. The
daemon times the match itself (`match_us`, the `find` call alone); the
socket round trip is measured here. Medians and p90s.

Builds nothing: pass the binary (default $CARGO_TARGET_DIR/release/voxd;
a debug build works and gives an upper bound, its own crate unoptimised).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import Conn  # noqa: E402  (the socket client bench/latency.py uses)

DEVICES = [f"device number {w}" for w in (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet "
    "kilo lima mike november oscar papa quebec romeo sierra tango").split()]


def commands_toml(n):
    lines = ["[lists]", "device = [" + ", ".join(f'"{d}"' for d in DEVICES) + "]", ""]
    for i in range(n):
        lines += [
            "[[command]]",
            f'name = "c{i}"',
            f'sentences = ["(verb{i} | action{i}) [the] {{device}} to {{level:number}} percent"]',
            'run = ["/bin/true", "{device}", "{level}"]',
            "",
        ]
    return "\n".join(lines)


def p90(values):
    return sorted(values)[int(0.9 * (len(values) - 1))]


def main():
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/voxd/target"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--voxd", default=str(Path(target) / "release/voxd"))
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    if not Path(args.voxd).is_file():
        sys.exit(f"no voxd at {args.voxd}: cargo build --release first")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        for sub in ("run", "config/voxd", "data", "cache"):
            (home / sub).mkdir(parents=True, mode=0o700)
        (home / "voxd.toml").write_text("[assistant]\nvoice_loop = false\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOXD_")}
        env.update(HOME=str(home), XDG_RUNTIME_DIR=str(home / "run"),
                   XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
                   XDG_CACHE_HOME=str(home / "cache"))
        commands = home / "config/voxd/commands.toml"
        commands.write_text(commands_toml(10))
        log = open(home / "voxd.log", "w")
        proc = subprocess.Popen([args.voxd, "--config", str(home / "voxd.toml"), "serve"],
                                env=env, stderr=log)
        try:
            sock = home / "run/voxd/voxd.sock"
            for _ in range(400):
                if sock.exists():
                    break
                time.sleep(0.05)
            conn = Conn(sock)
            conn.call("ping")
            print(f"load average {os.getloadavg()[0]:.2f}; {args.runs} runs per row")
            print("| templates | text | match median | match p90 | round trip median |")
            print("|---|---|---|---|---|")
            for n in (10, 100, 1000):
                commands.write_text(commands_toml(n))
                loaded = conn.call("commands", action="reload")["commands"]
                assert loaded == n, loaded
                texts = {
                    "the last command": f"verb{n - 1} the device number tango to twenty five percent",
                    "a near value (1 edit)": f"action{n - 1} device number tangoo to 25 percent",
                    "no command": "what is the wifi password",
                }
                for label, text in texts.items():
                    match, trip = [], []
                    for _ in range(args.runs):
                        started = time.perf_counter()
                        result = conn.call("commands", action="test", text=text)
                        trip.append((time.perf_counter() - started) * 1e6)
                        match.append(result["match_us"])
                    assert result["matched"] == (label != "no command"), result
                    print(f"| {n} | {label} | {statistics.median(match) / 1000:.3f} ms "
                          f"| {p90(match) / 1000:.3f} ms | {statistics.median(trip) / 1000:.3f} ms |")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
