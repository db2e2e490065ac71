#!/usr/bin/env python3
"""Latency budget of a spoken question (issue 8, scenario 1): from the end
of the user's speech to the first sample of the spoken reply, stage by
stage, on one profile (default `tiny`).

    python3 bench/latency.py [--voxd PATH] [--profile tiny] [--runs 5]
                             [--mode extractive|auto|generative]
                             [--hangover-ms 700] [--gap-s 1] [--restarts N]
                             [--set stt.fit_audio_ctx=false]

A fresh daemon (temporary home, the test model store, the fixture notes
in tests/fixtures/notes) listens on its socket PCM source; this script
speaks "Hey Jarvis. <question>" into it at real pace (100 ms chunks, as a
microphone would), in the daemon's own Piper voice, and times:

  endpoint   end of speech → `speech.end` (the VAD hangover, listen.hangover_ms)
  early      end of speech → `transcript.early` (the pause, listen.early_transcribe_ms,
             and its transcription; the voice loop's speculative turn starts here)
  stt        `speech.end` → `transcript.final`
  token      turn start → first answer text   (assistant.reply timings)
  synth      synthesising the first sentence
  held       how long that sentence's audio waited for the end to be confirmed
  total      end of speech → first reply audio queued for playback (the
             reply's first `speech.chunk`)

The end of speech is `speech.end` minus the hangover. Median and worst of
--runs questions. `--set assistant.speculative=false` answers only after
the hangover, for comparison. Builds nothing: pass the release binary (default
$CARGO_TARGET_DIR/release/voxd, else ~/.cache/voxd/target/release/voxd);
models come from $VOXD_TEST_MODELS (default ~/.cache/voxd/test-models, as
`bash scripts/bootstrap.sh test` pulls them).
"""

import argparse
import base64
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "What is the wifi password?",
    "When is Maria's birthday?",
    "What is the front door code?",
    "Who planted the apple tree?",
    "What instrument does Tomasz play?",
]


class Conn:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.lines = self.sock.makefile("r", encoding="utf-8")
        self.next_id = 0

    def send(self, cmd, **args):
        self.next_id += 1
        self.sock.sendall(json.dumps({"id": self.next_id, "cmd": cmd, **args}).encode() + b"\n")
        return self.next_id

    def call(self, cmd, **args):
        id_ = self.send(cmd, **args)
        for line in self.lines:
            msg = json.loads(line)
            if msg.get("id") == id_ and "ok" in msg:
                if not msg["ok"]:
                    sys.exit(f"voxd {cmd}: {msg['error']}")
                return msg["result"]
        sys.exit(f"voxd closed the connection during {cmd}")


def pcm_of(path):
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return w.getframerate(), w.readframes(w.getnframes())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/voxd/target"))
    ap.add_argument("--voxd", default=str(Path(target) / "release/voxd"))
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mode", default="extractive", choices=["extractive", "auto", "generative"])
    ap.add_argument("--hangover-ms", type=int, default=700)
    ap.add_argument("--gap-s", type=float, default=1.0,
                    help="quiet between questions; longer than engines.idle_unload_secs "
                         "makes every question start its engines cold")
    ap.add_argument("--restarts", type=int, default=0,
                    help="then restart the daemon this many times, asking one question after each")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="a config override (VOXD_SECTION_KEY), e.g. stt.fit_audio_ctx=false")
    args = ap.parse_args()
    if not Path(args.voxd).is_file():
        sys.exit(f"no voxd at {args.voxd}: cargo build --release --workspace first")
    store = Path(os.environ.get("VOXD_TEST_MODELS", Path.home() / ".cache/voxd/test-models"))
    home = Path(tempfile.mkdtemp(prefix="voxd-latency-"))
    hangover_ms = args.hangover_ms
    config = home / "voxd.toml"
    config.write_text(
        f'profile = "{args.profile}"\n'
        f'[models]\ndir = "{store}"\nsources = ["pypi"]\n'
        f'[rag]\nnotes = ["{ROOT / "tests/fixtures/notes"}"]\nindex = "{home / "index.sqlite"}"\n'
        f'answer_mode = "{args.mode}"\n'
        f'[conversation]\nhistory = "{home / "history.sqlite"}"\n'
        f'[tts]\nvoice = "piper-en_US-joe-medium"\n[audio]\noutput = "null"\n'
        f'[listen]\ninput = "socket"\nstart = true\nhangover_ms = {hangover_ms}\n'
        f'[assistant]\nsession = ""\nfollowup_secs = 0\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXD_")}
    env.update(XDG_RUNTIME_DIR=str(home / "run"), XDG_DATA_HOME=str(home / "data"),
               XDG_CACHE_HOME=str(home / "cache"))
    for override in args.set:
        key, _, value = override.partition("=")
        env["VOXD_" + key.replace(".", "_").upper()] = value
    (home / "run").mkdir(mode=0o700)
    daemon = Daemon(args.voxd, config, env, home)
    try:
        rows = []
        for i in range(args.runs):
            rows.append(daemon.ask(QUESTIONS[i % len(QUESTIONS)], hangover_ms))
            time.sleep(args.gap_s)
        report(args, f"{args.runs} questions", rows)
        firsts = []
        for i in range(args.restarts):
            daemon.restart()
            firsts.append(daemon.ask(QUESTIONS[i % len(QUESTIONS)], hangover_ms))
        if firsts:
            report(args, f"the first question after each of {args.restarts} restarts", firsts)
    finally:
        daemon.stop()


class Daemon:
    """`voxd serve` in the bench's home, with a control and an events connection."""

    def __init__(self, voxd, config, env, home):
        self.argv, self.env, self.home = [voxd, "--config", str(config), "serve"], env, home
        self.clips, self.clip_utterances = {}, set()
        self.start()

    def start(self):
        self.log = open(self.home / "voxd.log", "a")
        self.proc = subprocess.Popen(self.argv, env=self.env, stderr=self.log)
        sock = self.home / "run/voxd/voxd.sock"
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.05)
        self.control, events = Conn(sock), Conn(sock)
        while (self.control.call("notes", action="status")["indexing"]
               or not self.control.call("notes", action="status")["files"]):
            time.sleep(0.2)
        events.call("subscribe", events=["speech.end", "speech.chunk", "transcript.early", "transcript.final",
                                         "assistant.reply", "listen.error", "assistant.error"])
        # Events are timed as they arrive, while the audio is still being
        # sent (reading them only after it, they all seemed to arrive at once).
        self.arrivals = queue.Queue()

        def read_events(arrivals):
            for line in events.lines:
                msg = json.loads(line)
                arrivals.put((msg.get("event"), msg.get("data", {}), time.monotonic()))

        threading.Thread(target=read_events, args=(self.arrivals,), daemon=True).start()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()

    def restart(self):
        """A cold start on the same home: index, history and remembered
        engine sizes stay; the clips are reused, so the voice is not warmed."""
        self.stop()
        self.clip_utterances.clear()  # the new daemon numbers utterances afresh
        while (self.home / "run/voxd/voxd.sock").exists():
            time.sleep(0.05)
        self.start()

    def clip(self, question):
        if question not in self.clips:
            path = self.home / f"q{len(self.clips)}.wav"
            said = self.control.call("say", text=f"Hey Jarvis. {question}", out=str(path))
            self.clip_utterances.add(said["utterance"])
            self.clips[question] = pcm_of(path)
        return self.clips[question]

    def ask(self, question, hangover_ms):
        """Speaks "Hey Jarvis. <question>" at real pace; the row of stage times."""
        rate, pcm = self.clip(question)
        silence = b"\0\0" * (rate * 3 // 2)
        audio = silence + pcm + silence * 2
        step = rate // 10 * 2
        started = time.monotonic()
        for n, at in enumerate(range(0, len(audio), step)):
            self.control.call("listen", action="audio", pcm=base64.b64encode(audio[at:at + step]).decode(), rate=rate)
            time.sleep(max(0.0, started + (n + 1) * 0.1 - time.monotonic()))
        got = {}
        while "assistant.reply" not in got:
            name, data, at = self.arrivals.get(timeout=120)
            if name in ("listen.error", "assistant.error"):
                sys.exit(f"{name}: {data}")
            if name == "speech.chunk" and data.get("utterance") in self.clip_utterances:
                continue  # a clip's own
            got.setdefault(name, (data, at))
        end, final = got["speech.end"][1], got["transcript.final"][1]
        t = got["assistant.reply"][0]["timings"]
        speech_end = end - hangover_ms / 1000
        early = got.get("transcript.early", (None, None))[1]
        row = {
            "endpoint": hangover_ms,
            "early": (early - speech_end) * 1000 if early else float("nan"),
            "stt": (final - end) * 1000,
            "token": t["first_token_ms"],
            "synth": t["first_synth_ms"] or 0,
            "held": t.get("held_ms") or 0,
            "total": (got["speech.chunk"][1] - speech_end) * 1000,
        }
        llm = (got["assistant.reply"][0].get("ask") or {}).get("llm") or {}
        model = (f"  (model: {llm['prompt_tokens']} prompt tokens, {llm['cached_tokens']} cached, "
                 f"first token {llm['first_token_ms']:.0f} ms)" if llm else "")
        print(f"{question!r:40} " + "  ".join(f"{k} {v:.0f} ms" for k, v in row.items()) + model,
              file=sys.stderr)
        return row


def report(args, what, rows):
    print(f"\nprofile {args.profile}, mode {args.mode}, hangover {args.hangover_ms} ms, gap {args.gap_s} s, "
          f"{' '.join(args.set) or 'default config'}, {what}, "
          f"load average {os.getloadavg()[0]:.1f} (ms, median / worst):")
    print("| stage | median | worst |\n|---|---|---|")
    for key in ["endpoint", "early", "stt", "token", "synth", "held", "total"]:
        values = [r[key] for r in rows]
        print(f"| {key} | {statistics.median(values):.0f} | {max(values):.0f} |")

if __name__ == "__main__":
    main()
