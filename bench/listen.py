#!/usr/bin/env python3
"""Wake word + VAD benchmark: voxd's listening stages against the Python
openwakeword 0.5.1 package, side by side in one run, on the same clips, with
one ONNX Runtime thread each (ORT 1.32.0 on both sides).

    python3 bench/listen.py [--example PATH] [--python PY] [--runs N]

What runs on every 80 ms frame while listening:
  - voxd: `examples/listen_bench.rs`: openWakeWord melspectrogram →
    embedding → hey_jarvis classifier, and Silero VAD v6 (2.5 frames of
    512 samples per 80 ms);
  - reference: `openwakeword.Model(hey_jarvis, vad_threshold=0.5)`, whose
    predict() runs the same three wake models and its bundled Silero VAD.
Reported per clip: compute time per 80 ms frame (best of --runs), the
real-time factor (compute / audio), CPU use while listening as percent of
one core (= RTF × 100), the highest hey_jarvis score, and the ratio
voxd / openwakeword (below 1 is better for voxd).

Clips: the test speech's wake/00.wav ("Hey Jarvis. <question>", Piper),
20 s of digital silence and 20 s of a quiet room (white noise, -50 dBFS
peak). Builds nothing: pass the release example binary (default
$CARGO_TARGET_DIR/release/examples/listen_bench; build it with
`cargo build --release --example listen_bench`). The Python side is the
test venv (~/.cache/voxd/test-venv, made by `scripts/bootstrap.sh test`).

Measured (2 shared cores, load average 5-7, voxd crate in the dev profile
with dependencies at opt-level 2, `--runs 3`, three runs of the script):
voxd 2.6-3.8 ms per 80 ms frame (3.3-4.7 % of one core), openwakeword
0.5.1 4.8-6.8 ms (5.9-8.5 %); ratio 0.39-0.80 (quiet-room noise 0.39-0.40,
digital silence 0.58-0.70, speech 0.49-0.80). Both score 0.997 on the clip.
The reference runs Silero VAD v4 (30 ms frames) where voxd runs v6 (32 ms).
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

PY_WORKER = r"""
import json, sys, time, wave
import numpy as np
import openwakeword
from openwakeword.model import Model

model_dir, clip, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
with wave.open(clip) as w:
    assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
    audio = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
frames = len(audio) // 1280
best, top = float("inf"), 0.0
for _ in range(runs):
    m = Model(wakeword_models=[model_dir + "/hey_jarvis_v0.1.onnx"],
              inference_framework="onnx", vad_threshold=0.5)
    top = 0.0
    t0 = time.perf_counter()
    for i in range(frames):
        top = max(top, m.predict(audio[i * 1280:(i + 1) * 1280])["hey_jarvis_v0.1"])
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"frames": frames, "audio_secs": frames * 0.08, "compute_secs": best,
                  "per_frame_ms": best * 1000 / frames, "max_score": float(top),
                  "version": openwakeword.__version__ if hasattr(openwakeword, "__version__") else "0.5.1"}))
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
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(CACHE, "voxd/target"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--example", default=os.path.join(target, "release/examples/listen_bench"))
    p.add_argument("--python", default=os.path.join(CACHE, "voxd/test-venv/bin/python"))
    p.add_argument("--models", default=os.environ.get("VOXD_TEST_MODELS", os.path.join(CACHE, "voxd/test-models")))
    p.add_argument("--audio", default=os.environ.get("VOXD_TEST_AUDIO", os.path.join(CACHE, "voxd/test-audio/stt")))
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    wake_dir = os.path.join(a.models, "openwakeword")
    vad_dir = os.path.join(a.models, "silero-vad")
    env = dict(os.environ, OMP_NUM_THREADS="1")
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
        print(f"{'clip':<24} {'engine':<14} {'ms/frame':>9} {'RTF':>7} {'CPU %':>6} {'max score':>9}")
        for name, clip in clips:
            voxd = run([a.example, wake_dir, vad_dir, clip, str(a.runs)])
            ref = run([a.python, "-c", PY_WORKER, wake_dir, clip, str(a.runs)])
            for engine, r in (("voxd", voxd), ("openwakeword", ref)):
                rtf = r["compute_secs"] / r["audio_secs"]
                print(f"{name:<24} {engine:<14} {r['per_frame_ms']:>9.3f} {rtf:>7.4f} {rtf * 100:>6.2f} {r['max_score']:>9.3f}")
            print(f"{name:<24} {'ratio':<14} {voxd['per_frame_ms'] / ref['per_frame_ms']:>9.2f}  (voxd / openwakeword)")
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
