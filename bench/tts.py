#!/usr/bin/env python3
"""TTS benchmark: `voxd say` against Python `piper-tts`, side by side in one
run: same voice (en_US-joe-medium), same texts, same ONNX Runtime (1.32.0)
and the same number of ONNX threads.

    python3 bench/tts.py [--voxd PATH] [--threads N] [--runs N]

For a one-sentence and a ten-sentence text, each engine runs in a fresh
process and reports:
  - RTF: synthesis time / audio duration (best of --runs, warm voice);
  - peak RSS of the process (VmHWM: the voxd daemon, or the Python process);
  - first-audio latency: from a complete first sentence to its audio
    (voxd: a streaming `say` whose first request completes the sentence, to
    its `speech.chunk` event; piper-tts: `synthesize()` to its first chunk).
Ratios are voxd / piper-tts (below 1 is better for voxd).

voxd runs with audio.output = "null" and no sentence silence, so both
engines produce the same audio. Builds nothing: pass the release binary
(default $CARGO_TARGET_DIR/release/voxd, else ~/.cache/voxd/target/release/voxd).
piper-tts 1.8.0 + onnxruntime 1.32.0 are installed into
~/.cache/voxd/bench/piper-venv on first use (from PyPI).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

PIPER_TTS = "piper-tts==1.8.0"
ONNXRUNTIME = "onnxruntime==1.32.0"

ONE = "Hello, the weather today is sunny."
TEN = (
    "Good morning, and welcome to the daily briefing. "
    "The weather today is sunny, with a light breeze from the west. "
    "Temperatures will reach twenty two degrees by the early afternoon. "
    "Tomorrow brings clouds, and rain is likely in the evening. "
    "Your first meeting starts at nine thirty in the small conference room. "
    "Remember to bring the budget report that Anna sent yesterday. "
    "The train to the city is running ten minutes late this morning. "
    "A parcel is waiting for you at the front desk. "
    "The library books are due back on Friday. "
    "Have a pleasant and productive day."
)

PY_WORKER = r"""
import json, sys, time
from pathlib import Path
import onnxruntime
from piper import PiperVoice
from piper.config import PiperConfig

model, threads, runs, text = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t0 = time.perf_counter()
opts = onnxruntime.SessionOptions()
opts.intra_op_num_threads = threads
with open(model + ".json", encoding="utf-8") as f:
    config = PiperConfig.from_dict(json.load(f))
import piper.voice as pv
voice = PiperVoice(config=config,
                   session=onnxruntime.InferenceSession(model, sess_options=opts,
                                                        providers=["CPUExecutionProvider"]),
                   espeak_data_dir=pv.ESPEAK_DATA_DIR)
list(voice.synthesize("Warm up."))
load = time.perf_counter() - t0
times, firsts, samples = [], [], 0
for _ in range(runs):
    start = time.perf_counter()
    n, first = 0, None
    for chunk in voice.synthesize(text):
        if first is None:
            first = time.perf_counter() - start
        n += len(chunk.audio_float_array)
    times.append(time.perf_counter() - start)
    firsts.append(first)
    samples = n
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"load": load, "times": times, "firsts": firsts, "samples": samples,
                  "rate": config.sample_rate, "peak_kib": hwm}))
"""


def default_binary():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/voxd/target")
    return os.path.join(target, "release", "voxd")


def default_voice():
    store = os.environ.get("VOXD_TEST_MODELS") or os.path.expanduser("~/.cache/voxd/test-models")
    return os.path.join(store, "piper-en_US-joe-medium")


def piper_python():
    venv = os.path.expanduser("~/.cache/voxd/bench/piper-venv")
    python = os.path.join(venv, "bin", "python")
    probe = [python, "-c", "import piper, onnxruntime; assert onnxruntime.__version__ == '1.32.0'"]
    if not os.path.exists(python) or subprocess.run(probe, capture_output=True).returncode:
        print(f"installing {PIPER_TTS} {ONNXRUNTIME} into {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", PIPER_TTS, ONNXRUNTIME], check=True)
    return python


def run_python(python, model, threads, runs, text):
    out = subprocess.run([python, "-c", PY_WORKER, model, str(threads), str(runs), text],
                         check=True, capture_output=True, text=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    seconds = r["samples"] / r["rate"]
    return {"load_s": r["load"], "rtf": min(r["times"]) / seconds, "audio_s": seconds,
            "first_audio_s": min(r["firsts"]), "peak_mib": r["peak_kib"] / 1024}


class Conn:
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

    def event(self, name, **fields):
        while True:
            msg = json.loads(self.file.readline())
            if msg.get("event") == name and all(msg["data"].get(k) == v for k, v in fields.items()):
                return msg["data"]


def run_voxd(voxd, voice_dir, threads, runs, text):
    with tempfile.TemporaryDirectory() as home:
        store = os.path.dirname(voice_dir)
        with open(os.path.join(home, "voxd.toml"), "w") as f:
            f.write(f'[models]\ndir = "{store}"\n[tts]\nvoice = "{os.path.basename(voice_dir)}"\n'
                    f'threads = {threads}\nsentence_silence_ms = 0\n[audio]\noutput = "null"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOXD_")}
        env.update(HOME=home, XDG_RUNTIME_DIR=os.path.join(home, "run"))
        os.makedirs(env["XDG_RUNTIME_DIR"])
        path = os.path.join(env["XDG_RUNTIME_DIR"], "voxd", "voxd.sock")
        proc = subprocess.Popen([voxd, "--config", os.path.join(home, "voxd.toml"), "serve"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            t0 = time.perf_counter()
            while not os.path.exists(path):
                if proc.poll() is not None:
                    raise RuntimeError(f"voxd exited with {proc.returncode}")
                time.sleep(0.002)
            conn = Conn(path)
            conn.call("say", text="Warm up.")
            load = time.perf_counter() - t0
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                result = conn.call("say", text=text)
                times.append(time.perf_counter() - start)
            seconds = result["samples"] / result["sample_rate"]
            # First audio: the first request completes the first sentence
            # (with the whitespace that confirms its end).
            events = Conn(path)
            events.call("subscribe", events=["speech.chunk"])
            sentence, rest = text.split(". ", 1) if ". " in text else (text, "")
            firsts = []
            for _ in range(runs):
                start = time.perf_counter()
                opened = conn.call("say", text=sentence + ". ", more=True)
                events.event("speech.chunk", utterance=opened["utterance"], index=0)
                firsts.append(time.perf_counter() - start)
                conn.call("say", utterance=opened["utterance"], text=rest)
            with open(f"/proc/{proc.pid}/status") as f:
                hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
            return {"load_s": load, "rtf": min(times) / seconds, "audio_s": seconds,
                    "first_audio_s": min(firsts), "peak_mib": hwm / 1024}
        finally:
            proc.terminate()
            proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--voxd", default=default_binary())
    ap.add_argument("--voice", default=default_voice(), help="voice directory (model store entry)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not os.path.exists(args.voxd):
        sys.exit(f"{args.voxd} not found: build it with `cargo build --release` or pass --voxd")
    model = os.path.join(args.voice, "en_US-joe-medium.onnx")
    python = piper_python()
    print(f"voxd: {args.voxd}\nvoice: {model}\nthreads: {args.threads}, runs: {args.runs}, "
          f"ONNX Runtime 1.32.0 on both; {os.cpu_count()} cores\n")
    header = f"{'text':<14}{'engine':<11}{'audio s':>8}{'RTF':>8}{'first audio s':>15}{'peak RSS MiB':>14}{'load s':>8}"
    print(header)
    print("-" * len(header))
    for name, text in (("1 sentence", ONE), ("10 sentences", TEN)):
        v = run_voxd(args.voxd, args.voice, args.threads, args.runs, text)
        p = run_python(python, model, args.threads, args.runs, text)
        for engine, r in (("voxd", v), ("piper-tts", p)):
            print(f"{name:<14}{engine:<11}{r['audio_s']:>8.2f}{r['rtf']:>8.3f}{r['first_audio_s']:>15.3f}"
                  f"{r['peak_mib']:>14.0f}{r['load_s']:>8.2f}")
        print(f"{name:<14}{'ratio':<11}{'':>8}{v['rtf'] / p['rtf']:>8.2f}"
              f"{v['first_audio_s'] / p['first_audio_s']:>15.2f}{v['peak_mib'] / p['peak_mib']:>14.2f}")


if __name__ == "__main__":
    main()
