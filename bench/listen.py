#!/usr/bin/env python3
"""Wake word + VAD benchmark: voxd's listening stages against the Python
openwakeword 0.5.1 package, side by side in one run, on the same clips, with
one ONNX Runtime thread each (ORT 1.32.0 on both sides), runs interleaved
(voxd, Python, voxd, Python, ...), medians over --runs.

    python3 bench/listen.py [--example PATH] [--python PY] [--runs N]

What runs on every 80 ms frame while listening, timed per stage:
  - wake word: voxd's `examples/listen_bench.rs` (openWakeWord
    melspectrogram → embedding → hey_jarvis classifier) against
    `openwakeword.Model(hey_jarvis)` with no VAD (`vad_threshold=0`), whose
    predict() runs the same three models;
  - VAD, on the same model: voxd's Silero VAD v6 (2.5 frames of 512
    samples per 80 ms, 64 samples of context) against the same
    silero_vad.onnx (v6) run from Python the way silero-vad's own
    `OnnxWrapper` runs it (onnxruntime, one thread, the same context and
    state handling);
  - for reference, what openwakeword's users get with `vad_threshold > 0`:
    its bundled Silero VAD v4 (`openwakeword.VAD`, 640-sample frames), so
    the "wake + VAD" row compares voxd (v6) with openwakeword (v4): not the
    same model, printed apart.
Reported per clip and stage: compute time per 80 ms frame (median of the
runs), CPU use while listening as percent of one core, the highest
hey_jarvis score, and the ratio voxd / Python (below 1 is better for voxd).

Clips: the test speech's wake/00.wav ("Hey Jarvis. <question>", Piper),
20 s of digital silence and 20 s of a quiet room (white noise, -50 dBFS
peak). Then the wake detection latency of voxd over the wake clips. Builds
nothing: pass the release example binary (default
$CARGO_TARGET_DIR/release/examples/listen_bench; build it with
`cargo build --release --example listen_bench`). The Python side is the
test venv (~/.cache/voxd/test-venv, made by `scripts/bootstrap.sh test`).
"""

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import wave

HOME = os.path.expanduser("~")
CACHE = os.environ.get("XDG_CACHE_HOME", os.path.join(HOME, ".cache"))

# One run of each Python stage over a clip, timed per 80 ms frame.
PY_WORKER = r"""
import json, sys, time, wave
import numpy as np
import onnxruntime as ort
import openwakeword
from openwakeword.model import Model

wake_dir, vad6_path, clip = sys.argv[1], sys.argv[2], sys.argv[3]
with wave.open(clip) as w:
    assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
    audio = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
frames = len(audio) // 1280
steps = [audio[i * 1280:(i + 1) * 1280] for i in range(frames)]

# Wake word alone: no VAD (vad_threshold=0, the default).
m = Model(wakeword_models=[wake_dir + "/hey_jarvis_v0.1.onnx"], inference_framework="onnx")
top, wake = 0.0, 0.0
for x in steps:
    t = time.perf_counter()
    score = m.predict(x)["hey_jarvis_v0.1"]
    wake += time.perf_counter() - t
    top = max(top, score)

# Silero VAD v6, as silero-vad's OnnxWrapper runs it (16 kHz: 512-sample
# frames after 64 samples of the previous one, state [2, 1, 128]).
opts = ort.SessionOptions()
opts.inter_op_num_threads = 1
opts.intra_op_num_threads = 1
s6 = ort.InferenceSession(vad6_path, sess_options=opts, providers=["CPUExecutionProvider"])
state = np.zeros((2, 1, 128), dtype=np.float32)
context = np.zeros((1, 64), dtype=np.float32)
sr = np.array(16000, dtype=np.int64)
pending = np.zeros(0, dtype=np.float32)
vad6 = 0.0
for x in steps:
    t = time.perf_counter()
    pending = np.concatenate([pending, x.astype(np.float32) / 32768.0])
    while len(pending) >= 512:
        frame, pending = pending[None, :512], pending[512:]
        inp = np.concatenate([context, frame], axis=1)
        out, state = s6.run(None, {"input": inp, "state": state, "sr": sr})
        context = inp[:, -64:]
    vad6 += time.perf_counter() - t

# openwakeword's bundled Silero VAD v4, called as Model.predict calls it.
v4 = openwakeword.VAD()
vad4 = 0.0
for x in steps:
    t = time.perf_counter()
    v4(x)
    vad4 += time.perf_counter() - t

print(json.dumps({"frames": frames, "audio_secs": frames * 0.08, "wake_secs": wake,
                  "vad6_secs": vad6, "vad4_secs": vad4, "max_score": float(top)}))
"""


def quiet_room(path, secs, level):
    """`secs` of white noise at `level` (peak, 0..1): 0 is digital silence."""
    import random
    rnd = random.Random(7)
    peak = int(32767 * level)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"".join(rnd.randint(-peak, peak).to_bytes(2, "little", signed=True)
                               for _ in range(int(16000 * secs))))


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(CACHE, "voxd/target"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--example", default=os.path.join(target, "release/examples/listen_bench"))
    p.add_argument("--python", default=os.path.join(CACHE, "voxd/test-venv/bin/python"))
    p.add_argument("--models", default=os.environ.get("VOXD_TEST_MODELS", os.path.join(CACHE, "voxd/test-models")))
    p.add_argument("--audio", default=os.environ.get("VOXD_TEST_AUDIO", os.path.join(CACHE, "voxd/test-audio/stt")))
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    wake_dir = os.path.join(a.models, "openwakeword")
    vad_dir = os.path.join(a.models, "silero-vad")
    vad6 = os.path.join(vad_dir, "silero_vad.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        silence = os.path.join(tmp, "silence.wav")
        quiet_room(silence, 20, 0.0)
        room = os.path.join(tmp, "room.wav")
        quiet_room(room, 20, 0.003)
        clips = [
            ("hey jarvis + question", os.path.join(a.audio, "wake/00.wav")),
            ("20 s digital silence", silence),
            ("20 s noise at -50 dBFS", room),
        ]
        print(f"load average {os.getloadavg()[0]:.2f}; {a.runs} interleaved runs, medians; "
              "ms of compute per 80 ms frame")
        print(f"{'clip':<24} {'stage':<26} {'voxd':>7} {'Python':>7} {'ratio':>6} "
              f"{'voxd CPU %':>10} {'max score voxd / Python':>24}")
        for name, clip in clips:
            voxd, ref = [], []
            for _ in range(a.runs):
                voxd.append(run([a.example, wake_dir, vad_dir, clip, "1"]))
                ref.append(run([a.python, "-c", PY_WORKER, wake_dir, vad6, clip]))
            frames = voxd[0]["frames"]

            def ms(rows, key):
                return statistics.median(r[key][0] if isinstance(r[key], list) else r[key]
                                         for r in rows) * 1000 / frames

            vw, vv = ms(voxd, "wake_secs"), ms(voxd, "vad_secs")
            pw, p6, p4 = ms(ref, "wake_secs"), ms(ref, "vad6_secs"), ms(ref, "vad4_secs")
            vt = statistics.median((r["wake_secs"][0] + r["vad_secs"][0]) * 1000 / frames
                                   for r in voxd)
            pt = statistics.median((r["wake_secs"] + r["vad4_secs"]) * 1000 / frames for r in ref)
            scores = f"{voxd[0]['max_score']:.3f} / {ref[0]['max_score']:.3f}"
            rows = [("wake word (same models)", vw, pw, scores),
                    ("VAD (both Silero v6)", vv, p6, ""),
                    ("wake + VAD (v6 / oww's v4)", vt, pt, ""),
                    ("  openwakeword's VAD v4", None, p4, "")]
            for stage, v, p, sc in rows:
                if v is None:
                    print(f"{name:<24} {stage:<26} {'':>7} {p:>7.3f}")
                    continue
                print(f"{name:<24} {stage:<26} {v:>7.3f} {p:>7.3f} {v / p:>6.2f} "
                      f"{v / 80 * 100:>10.2f} {sc:>24}")
        # Detection latency: from the end of "Hey Jarvis." (the question
        # starts 0.4 s after it, wake/NN.times) to the first 80 ms step whose
        # score reaches 0.5. The rendered phrase ends with the voice's own
        # short silence, so this is a slight underestimate.
        print("\nwake detection latency (end of \"Hey Jarvis.\" → score ≥ 0.5), voxd:")
        latencies, missed = [], []
        for clip in sorted(glob.glob(os.path.join(a.audio, "wake", "*.wav"))):
            question_start = float(open(clip[:-4] + ".times").read().split()[0])
            r = run([a.example, wake_dir, vad_dir, clip, "1"])
            if r["detected_secs"] is None:
                missed.append(os.path.basename(clip))
            else:
                latencies.append((r["detected_secs"] - (question_start - 0.4)) * 1000)
        print(f"  {len(latencies)} of {len(latencies) + len(missed)} clips detected; latency median "
              f"{statistics.median(latencies):.0f} ms, min {min(latencies):.0f}, max {max(latencies):.0f}"
              + (f"; missed: {', '.join(missed)}" if missed else ""))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
