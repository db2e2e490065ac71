#!/usr/bin/env python3
"""End of speech → first reply audio for spoken questions, stage by stage,
in the configuration users get (issue 21): the `tiny` profile's defaults,
conversation history on (`assistant.session = "voice"`), follow-up
questions without the wake word.

    python3 bench/latency.py [--voxd PATH] [--profile tiny] [--groups 7]
                             [--mode auto|extractive|generative]
                             [--gap-s 1] [--restarts 3]
                             [--set stt.fit_audio_ctx=false]

A fresh daemon (temporary home, the test model store, the fixture notes
in tests/fixtures/notes) listens on its socket PCM source. This script
asks questions in groups of three, as a user would: "Hey Jarvis.
<question>", then two follow-ups without the wake word while the
follow-up window (`assistant.followup_secs`) is open, each carrying the
session's history to the model; a group starts with the history
forgotten and the window closed. The audio (the daemon's own Piper voice)
goes in 100 ms chunks, each sent when its 100 ms have passed, as a
microphone would, with silence between questions (the listener keeps time by
the audio it hears). Stage times:

  early      end of speech → `transcript.early` (the pause, listen.early_transcribe_ms,
             and its transcription; the speculative turn starts here)
  final      end of speech → `transcript.final` (the VAD hangover and the transcription)
  token      turn start → first answer text   (assistant.reply timings)
  synth      synthesising the first sentence
  held       how long that sentence's audio waited for the end to be confirmed
  total      end of speech → first reply audio queued for playback (the
             reply's first `speech.chunk`)

The end of speech is the clip's own: the moment its last voiced sample
(above -40 dBFS) is due, in real time. Reported: median, p90 and worst,
of every question, of each turn of a group, and of the first question
after each of --restarts restarts (engines cold, their sizes remembered).
The model that ran is named: offline it is the test store's base Gemma 3
270M (the profile's first choice comes from the hub on users' machines).
Builds nothing: pass the release binary (default
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
WAKE = "Hey Jarvis."
VOICED = 10 ** (-40 / 20) * 32768  # -40 dBFS, in 16-bit samples


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


def last_voiced(pcm):
    """Index of the last sample above -40 dBFS."""
    samples = memoryview(pcm).cast("h")
    for i in range(len(samples) - 1, -1, -1):
        if abs(samples[i]) > VOICED:
            return i
    sys.exit("a clip with no speech in it")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/voxd/target"))
    ap.add_argument("--voxd", default=str(Path(target) / "release/voxd"))
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--groups", type=int, default=7, help="groups of three questions (default 7: 21 questions)")
    ap.add_argument("--mode", default="auto", choices=["auto", "extractive", "generative"],
                    help="rag.answer_mode (default auto, as shipped)")
    ap.add_argument("--gap-s", type=float, default=1.0, help="silence after a reply before the follow-up")
    ap.add_argument("--restarts", type=int, default=3,
                    help="then restart the daemon this many times, asking one question after each")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="a config override (VOXD_SECTION_KEY), e.g. stt.fit_audio_ctx=false")
    args = ap.parse_args()
    if not Path(args.voxd).is_file():
        sys.exit(f"no voxd at {args.voxd}: cargo build --release --workspace first")
    store = Path(os.environ.get("VOXD_TEST_MODELS", Path.home() / ".cache/voxd/test-models"))
    home = Path(tempfile.mkdtemp(prefix="voxd-latency-"))
    config = home / "voxd.toml"
    # Only what a bench home needs: its own files, the test store, the
    # fixture notes, the socket as microphone and no sound device.
    config.write_text(
        f'profile = "{args.profile}"\n'
        f'[models]\ndir = "{store}"\nsources = ["pypi"]\n'
        f'[rag]\nnotes = ["{ROOT / "tests/fixtures/notes"}"]\nindex = "{home / "index.sqlite"}"\n'
        f'answer_mode = "{args.mode}"\n'
        f'[conversation]\nhistory = "{home / "history.sqlite"}"\n'
        f'[tts]\nvoice = "piper-en_US-joe-medium"\n[audio]\noutput = "null"\n'
        f'[listen]\ninput = "socket"\nstart = true\n'
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
        for g in range(args.groups):
            daemon.control.call("forget", session=daemon.session)
            for turn in range(3):
                question = QUESTIONS[(3 * g + turn) % len(QUESTIONS)]
                rows.append(daemon.ask(question, wake=turn == 0) | {"turn": turn + 1})
                daemon.silence(args.gap_s)
            daemon.silence(daemon.followup_s)  # the window closes: the next group wakes voxd
        print(f"\nmodel: {daemon.model}", file=sys.stderr)
        report(args, f"{len(rows)} questions in {args.groups} groups of three", rows)
        for turn in (1, 2, 3):
            report(args, f"turn {turn} of each group", [r for r in rows if r["turn"] == turn])
        firsts = []
        for i in range(args.restarts):
            daemon.restart()
            firsts.append(daemon.ask(QUESTIONS[i % len(QUESTIONS)], wake=True))
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
        assistant = self.control.call("config")["config"]["assistant"]
        self.session, self.followup_s = assistant["session"], assistant["followup_secs"] + 1
        if not self.session:
            sys.exit("assistant.session is empty: this bench measures turns with history")

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
        events.call("subscribe", events=["speech.start", "speech.end", "speech.chunk", "transcript.early",
                                         "transcript.final", "assistant.reply", "listen.error",
                                         "assistant.error"])
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

    @property
    def model(self):
        llm = self.control.call("status")["llm"]
        return (llm.get("model") or {}).get("name") or llm

    def clip(self, text):
        if text not in self.clips:
            path = self.home / f"q{len(self.clips)}.wav"
            said = self.control.call("say", text=text, out=str(path))
            self.clip_utterances.add(said["utterance"])
            self.clips[text] = pcm_of(path)
        return self.clips[text]

    def silence(self, secs):
        """Quiet from the microphone at real pace: the listener's clock
        (the follow-up window, the VAD) runs on the audio it hears, so a
        pause is silence sent, not nothing sent."""
        rate, step = 16_000, 16_000 // 10 * 2
        started = time.monotonic()
        for n in range(int(secs * 10)):
            time.sleep(max(0.0, started + (n + 1) * 0.1 - time.monotonic()))
            self.control.call("listen", action="audio", pcm=base64.b64encode(b"\0" * step).decode(), rate=rate)

    def ask(self, question, wake):
        """Says the question (after the wake word, or as a follow-up) at
        real pace; the row of stage times."""
        rate, pcm = self.clip(f"{WAKE} {question}" if wake else question)
        silence = b"\0\0" * (rate * 3 // 2)
        audio = silence + pcm + silence * 2
        step = rate // 10 * 2  # 100 ms
        started = time.monotonic()
        speech_end = started + (len(silence) // 2 + last_voiced(pcm) + 1) / rate
        for n, at in enumerate(range(0, len(audio), step)):
            # A microphone hands over 100 ms once they have passed.
            time.sleep(max(0.0, started + (n + 1) * 0.1 - time.monotonic()))
            self.control.call("listen", action="audio", pcm=base64.b64encode(audio[at:at + step]).decode(), rate=rate)
        got = {}
        while "assistant.reply" not in got:
            name, data, at = self.arrivals.get(timeout=120)
            if name in ("listen.error", "assistant.error"):
                sys.exit(f"{name}: {data}")
            if name == "speech.chunk" and data.get("utterance") in self.clip_utterances:
                continue  # a clip's own
            got.setdefault(name, (data, at))
        trigger = got["speech.start"][0]["trigger"]
        if trigger != ("wake" if wake else "followup"):
            sys.exit(f"{question!r} started by {trigger}: the follow-up window did not hold")
        t = got["assistant.reply"][0]["timings"]
        early = got.get("transcript.early", (None, None))[1]
        row = {
            "early": (early - speech_end) * 1000 if early else float("nan"),
            "final": (got["transcript.final"][1] - speech_end) * 1000,
            "token": t["first_token_ms"],
            "synth": t["first_synth_ms"] or 0,
            "held": t.get("held_ms") or 0,
            "total": (got["speech.chunk"][1] - speech_end) * 1000,
        }
        said = got["assistant.reply"][0].get("ask") or {}
        llm = said.get("llm") or {}
        model = (f"  ({said.get('mode')}: {llm['prompt_tokens']} prompt tokens, {llm['cached_tokens']} cached, "
                 f"first token {llm['first_token_ms']:.0f} ms)" if llm else f"  ({said.get('mode')})")
        print(f"{'wake' if wake else 'follow-up':9} {question!r:36} "
              + "  ".join(f"{k} {v:.0f}" for k, v in row.items()) + model, file=sys.stderr)
        return row


def p90(values):
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]


def report(args, what, rows):
    print(f"\nprofile {args.profile}, mode {args.mode}, gap {args.gap_s} s, "
          f"{' '.join(args.set) or 'default config'}, {what}, "
          f"load average {os.getloadavg()[0]:.1f} (ms from the end of speech; token, synth, held: within the turn):")
    print("| stage | median | p90 | worst |\n|---|---|---|---|")
    for key in ["early", "final", "token", "synth", "held", "total"]:
        values = [r[key] for r in rows if r[key] == r[key]]  # no NaN (no early transcript)
        if values:
            print(f"| {key} | {statistics.median(values):.0f} | {p90(values):.0f} | {max(values):.0f} |")


if __name__ == "__main__":
    main()
