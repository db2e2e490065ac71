#!/usr/bin/env python3
"""TTS benchmark: `voxd say` against Python `piper-tts`, side by side in one
run: same voice (en_US-joe-medium), same texts, same ONNX Runtime (1.32.0),
the same number of ONNX threads, and runs interleaved (voxd, piper-tts,
voxd, piper-tts, ...) so that the machine's load falls on both alike.

    python3 bench/tts.py [--voxd PATH] [--python PY] [--threads N] [--runs N]

Both engines stay warm for the whole run: one voxd daemon and one Python
process holding a `PiperVoice`, fed one text at a time (a fresh pair for
each text, so that peak RSS is per text). Two parts:

1. Synthesis speed and memory, a one-sentence and a ten-sentence text:
   - RTF: each run's synthesis time / that run's own audio length (Piper's
     noise changes the length of every rendering), median over --runs;
     voxd: the `say` request's round trip (the reply comes once every
     sentence is synthesised and written to the sink); piper-tts:
     `synthesize()` iterated to the end;
   - peak RSS (VmHWM) of the voxd daemon and of the Python process.
2. Time to first audio for a 3- and a 10-sentence text, from the request
   to the first audio a client can play, median over --runs:
   - voxd: `say` of the whole text with `audio.output = "socket"`, to the
     first `speech.audio` event on a connection subscribed to it (voxd
     speaks sentence by sentence, synthesising the next while the first
     plays);
   - piper-tts whole text: `synthesize()` to its end, what the `piper`
     command gives (it writes the WAV when the text is done);
   - piper-tts first chunk: `synthesize()` to its first `AudioChunk` (a
     Python caller that streams the generator itself).
Ratios are voxd / piper-tts (below 1 is better for voxd).

voxd runs with no sentence silence, so both produce the same audio. Builds
nothing: pass the release binary (default $CARGO_TARGET_DIR/release/voxd,
else ~/.cache/voxd/target/release/voxd). The Python side is the test venv
(~/.cache/voxd/test-venv: piper-tts 1.8.0, onnxruntime 1.32.0) when it has
them, else they are installed into ~/.cache/voxd/bench/piper-venv.
"""

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PIPER_TTS = "piper-tts==1.8.0"
ONNXRUNTIME = "onnxruntime==1.32.0"

ONE = "Hello, the weather today is sunny."
SENTENCES = [
    "Good morning, and welcome to the daily briefing.",
    "The weather today is sunny, with a light breeze from the west.",
    "Temperatures will reach twenty two degrees by the early afternoon.",
    "Tomorrow brings clouds, and rain is likely in the evening.",
    "Your first meeting starts at nine thirty in the small conference room.",
    "Remember to bring the budget report that Anna sent yesterday.",
    "The train to the city is running ten minutes late this morning.",
    "A parcel is waiting for you at the front desk.",
    "The library books are due back on Friday.",
    "Have a pleasant and productive day.",
]
TEN = " ".join(SENTENCES)
THREE = " ".join(SENTENCES[:3])

# The piper-tts side: one warm voice, one JSON line in (the text), one out.
PY_WORKER = r"""
import json, sys, time
import onnxruntime
from piper import PiperVoice
from piper.config import PiperConfig
import piper.voice as pv

model, threads = sys.argv[1], int(sys.argv[2])
opts = onnxruntime.SessionOptions()
opts.intra_op_num_threads = threads
with open(model + ".json", encoding="utf-8") as f:
    config = PiperConfig.from_dict(json.load(f))
voice = PiperVoice(config=config,
                   session=onnxruntime.InferenceSession(model, sess_options=opts,
                                                        providers=["CPUExecutionProvider"]),
                   espeak_data_dir=pv.ESPEAK_DATA_DIR)
list(voice.synthesize("Warm up."))
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    text = json.loads(line)["text"]
    start = time.perf_counter()
    n, first = 0, None
    for chunk in voice.synthesize(text):
        if first is None:
            first = time.perf_counter() - start
        n += len(chunk.audio_float_array)
    total = time.perf_counter() - start
    hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    print(json.dumps({"secs": total, "first_secs": first, "audio_secs": n / config.sample_rate,
                      "peak_kib": hwm}), flush=True)
"""


def default_binary():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/voxd/target")
    return os.path.join(target, "release", "voxd")


def default_voice():
    store = os.environ.get("VOXD_TEST_MODELS") or os.path.expanduser("~/.cache/voxd/test-models")
    return os.path.join(store, "piper-en_US-joe-medium")


def usable(python):
    probe = [python, "-c", "import piper, onnxruntime; assert onnxruntime.__version__ == '1.32.0'"]
    return os.path.exists(python) and subprocess.run(probe, capture_output=True).returncode == 0


def piper_python(wanted):
    """A Python with piper-tts 1.8.0 and onnxruntime 1.32.0."""
    for python in filter(None, (wanted, os.path.expanduser("~/.cache/voxd/test-venv/bin/python"))):
        if usable(python):
            return python
    venv = os.path.expanduser("~/.cache/voxd/bench/piper-venv")
    python = os.path.join(venv, "bin", "python")
    if not usable(python):
        print(f"installing {PIPER_TTS} {ONNXRUNTIME} into {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", PIPER_TTS, ONNXRUNTIME], check=True)
    return python


class Piper:
    """The warm piper-tts process."""

    def __init__(self, python, model, threads):
        self.proc = subprocess.Popen([python, "-c", PY_WORKER, model, str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert json.loads(self.proc.stdout.readline())["ready"]

    def synthesize(self, text):
        self.proc.stdin.write(json.dumps({"text": text}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


class Conn:
    """One JSON-lines connection to the daemon's socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.file = self.sock.makefile()
        self.next_id = 0

    def send(self, cmd, **args):
        self.next_id += 1
        self.sock.sendall((json.dumps({"id": self.next_id, "cmd": cmd, **args}) + "\n").encode())
        return self.next_id

    def reply(self, rid):
        while True:
            msg = json.loads(self.file.readline())
            if msg.get("id") == rid and "event" not in msg:
                if not msg["ok"]:
                    raise RuntimeError(msg["error"])
                return msg["result"]

    def call(self, cmd, **args):
        return self.reply(self.send(cmd, **args))


class Voxd:
    """A warm voxd daemon speaking to `audio.output = "socket"`."""

    def __init__(self, voxd, voice_dir, threads):
        self.home = tempfile.TemporaryDirectory(prefix="voxd-bench-tts-")
        home = self.home.name
        with open(os.path.join(home, "voxd.toml"), "w") as f:
            f.write(f'[models]\ndir = "{os.path.dirname(voice_dir)}"\n'
                    f'[tts]\nvoice = "{os.path.basename(voice_dir)}"\nthreads = {threads}\n'
                    f'sentence_silence_ms = 0\n[audio]\noutput = "socket"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOXD_")}
        env.update(HOME=home, XDG_RUNTIME_DIR=os.path.join(home, "run"))
        os.makedirs(env["XDG_RUNTIME_DIR"])
        self.path = os.path.join(env["XDG_RUNTIME_DIR"], "voxd", "voxd.sock")
        self.proc = subprocess.Popen([voxd, "--config", os.path.join(home, "voxd.toml"), "serve"],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not os.path.exists(self.path):
            if self.proc.poll() is not None:
                raise RuntimeError(f"voxd exited with {self.proc.returncode}")
            time.sleep(0.002)
        time.sleep(0.05)
        self.conn = Conn(self.path)
        self.conn.call("say", text="Warm up.")
        self.audio = None

    def say(self, text):
        """(seconds until the reply, seconds of audio)."""
        start = time.perf_counter()
        result = self.conn.call("say", text=text)
        return time.perf_counter() - start, result["samples"] / result["sample_rate"]

    def first_audio(self, text):
        """Seconds from sending `say` to the first `speech.audio` event."""
        if self.audio is None:
            self.audio = Conn(self.path)
            self.audio.call("subscribe", events=["speech.audio"])
            self.audio.sock.settimeout(60)
        start = time.perf_counter()
        rid = self.conn.send("say", text=text)
        msg = json.loads(self.audio.file.readline())
        first = time.perf_counter() - start
        assert msg.get("event") == "speech.audio" and base64.b64decode(msg["data"]["pcm"]), msg
        result = self.conn.reply(rid)
        # Drain this utterance's other chunks before the next run.
        for _ in range(result["chunks"] - 1):
            json.loads(self.audio.file.readline())
        return first

    def peak_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        self.home.cleanup()


def med(xs):
    return statistics.median(xs)


def speed(args, python, model):
    print(f"1. synthesis: RTF (each run's time / its own audio), median of {args.runs} "
          "interleaved runs; peak RSS")
    header = (f"{'text':<14}{'engine':<11}{'audio s':>8}{'RTF':>8}{'RTF min-max':>14}"
              f"{'peak RSS MiB':>14}")
    print(header)
    print("-" * len(header))
    for name, text in (("1 sentence", ONE), ("10 sentences", TEN)):
        v, p = Voxd(args.voxd, args.voice, args.threads), Piper(python, model, args.threads)
        try:
            vr, pr, va, pa = [], [], [], []
            for _ in range(args.runs):
                secs, audio = v.say(text)
                vr.append(secs / audio)
                va.append(audio)
                r = p.synthesize(text)
                pr.append(r["secs"] / r["audio_secs"])
                pa.append(r["audio_secs"])
            peaks = (v.peak_mib(), r["peak_kib"] / 1024)
        finally:
            v.close()
            p.close()
        for engine, rtf, audio, peak in (("voxd", vr, va, peaks[0]), ("piper-tts", pr, pa, peaks[1])):
            print(f"{name:<14}{engine:<11}{med(audio):>8.2f}{med(rtf):>8.4f}"
                  f"{f'{min(rtf):.4f}-{max(rtf):.4f}':>14}{peak:>14.0f}")
        print(f"{name:<14}{'ratio':<11}{'':>8}{med(vr) / med(pr):>8.2f}{'':>14}"
              f"{peaks[0] / peaks[1]:>14.2f}")


def first_audio(args, python, model):
    print(f"\n2. time to first audio (request → first playable audio), median of {args.runs} "
          "interleaved runs, seconds")
    header = (f"{'text':<14}{'voxd':>8}{'piper-tts whole':>17}{'piper-tts 1st chunk':>21}"
              f"{'ratio to whole':>16}{'ratio to 1st':>14}")
    print(header)
    print("-" * len(header))
    v, p = Voxd(args.voxd, args.voice, args.threads), Piper(python, model, args.threads)
    try:
        for name, text in (("3 sentences", THREE), ("10 sentences", TEN)):
            vf, pw, pf = [], [], []
            for _ in range(args.runs):
                vf.append(v.first_audio(text))
                r = p.synthesize(text)
                pw.append(r["secs"])
                pf.append(r["first_secs"])
            print(f"{name:<14}{med(vf):>8.3f}{med(pw):>17.3f}{med(pf):>21.3f}"
                  f"{med(vf) / med(pw):>16.3f}{med(vf) / med(pf):>14.2f}")
    finally:
        v.close()
        p.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voxd", default=default_binary())
    ap.add_argument("--voice", default=default_voice(), help="voice directory (model store entry)")
    ap.add_argument("--python", help="a Python with piper-tts 1.8.0 and onnxruntime 1.32.0")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    if not os.path.exists(args.voxd):
        sys.exit(f"{args.voxd} not found: build it with `cargo build --release` or pass --voxd")
    model = os.path.join(args.voice, "en_US-joe-medium.onnx")
    python = piper_python(args.python)
    print(f"voxd: {args.voxd}\nvoice: {model}\npiper-tts: {python}\nthreads: {args.threads}, "
          f"runs: {args.runs}, ONNX Runtime 1.32.0 on both; {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.2f}\n")
    speed(args, python, model)
    first_audio(args, python, model)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
