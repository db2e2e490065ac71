#!/usr/bin/env python3
"""Image-caption benchmark.

1. Captioning: images/s and peak RSS of the daemon captioning 384×384
   images (`caption` command, model loaded and warm) on N threads, with the
   tiny random BLIP of the tests and, when given, BLIP base; side by side
   with transformers on the same model and images when `--python` has torch.
2. Watcher: 1,000 small images dropped into a watched folder at once: time
   from the first write until all are captioned (images/s through the whole
   queue: settle, hash, decode, caption, SQLite), the daemon's peak RSS and
   the slowest `ping` meanwhile.

    cargo build --release && cargo run --release --example tiny_blip -- /tmp/tb \\
        ~/.cache/voxd/test-models/all-minilm-l6-v2/tokenizer.json
    python3 bench/vision.py --tiny /tmp/tb [--base DIR] [--python /venv/bin/python]

Builds nothing. Images are written as BMP so this script needs only the
standard library.
"""

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time


def default_binary():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/voxd/target")
    return os.path.join(target, "release", "voxd")


def bmp(path, width, height, seed):
    """A 24-bit BMP with a seed-dependent pattern."""
    row = (width * 3 + 3) & ~3
    pixels = bytearray()
    for y in range(height):
        line = bytearray()
        for x in range(width):
            line += bytes(((x * 7 + seed) % 256, (y * 5 + seed * 3) % 256, ((x ^ y) + seed) % 256))
        pixels += line + b"\0" * (row - len(line))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    with open(path, "wb") as f:
        f.write(header + info + pixels)


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


class Daemon:
    def __init__(self, voxd, home, config, threads):
        self.home = home
        with open(os.path.join(home, "voxd.toml"), "w") as f:
            f.write(config)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOXD_")}
        env.update(HOME=home, XDG_RUNTIME_DIR=os.path.join(home, "run"),
                   XDG_CONFIG_HOME=os.path.join(home, "config"),
                   XDG_DATA_HOME=os.path.join(home, "data"),
                   RAYON_NUM_THREADS=str(threads))
        os.makedirs(env["XDG_RUNTIME_DIR"], exist_ok=True)
        self.sock_path = os.path.join(env["XDG_RUNTIME_DIR"], "voxd", "voxd.sock")
        self.log = open(os.path.join(home, "voxd.log"), "w")
        self.proc = subprocess.Popen(
            [voxd, "--config", os.path.join(home, "voxd.toml"), "serve", "--log-format", "text"],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 30
        while True:
            try:
                self.call({"cmd": "ping"})
                return
            except (FileNotFoundError, ConnectionRefusedError):
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"voxd did not start; see {home}/voxd.log")
                time.sleep(0.01)

    def call(self, request):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.sock_path)
            s.sendall((json.dumps({"id": 1, **request}) + "\n").encode())
            reply = json.loads(s.makefile().readline())
        if not reply.get("ok"):
            raise RuntimeError(reply)
        return reply["result"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def caption_bench(voxd, model, images, threads):
    with tempfile.TemporaryDirectory() as home:
        daemon = Daemon(voxd, home, f'[vision]\nmodel = "{model}"\nidle_unload_secs = 0\n', threads)
        try:
            daemon.call({"cmd": "caption", "paths": images[:1]})  # load the model
            start = time.perf_counter()
            result = daemon.call({"cmd": "caption", "paths": images})
            elapsed = time.perf_counter() - start
            assert all(c["ok"] for c in result["captions"]), result
            return len(images) / elapsed, peak_rss_mib(daemon.proc.pid), result["captions"][0]["caption"]
        finally:
            daemon.stop()


REFERENCE = r"""
import json, resource, sys, time, torch
from PIL import Image
from transformers import BlipForConditionalGeneration, PreTrainedTokenizerFast
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil
model_dir, threads, images = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
torch.set_num_threads(threads)
model = BlipForConditionalGeneration.from_pretrained(model_dir).eval()
processor = BlipImageProcessorPil()
def caption(path):
    pixels = processor(Image.open(path).convert("RGB"), return_tensors="pt").pixel_values
    with torch.no_grad():
        return model.generate(pixel_values=pixels, max_length=20, num_beams=1, do_sample=False)
caption(images[0])
start = time.perf_counter()
for path in images:
    caption(path)
elapsed = time.perf_counter() - start
print(json.dumps({"per_s": len(images) / elapsed,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def reference_bench(python, model, images, threads):
    out = subprocess.run([python, "-c", REFERENCE, model, str(threads), *images],
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["per_s"], result["peak_mib"]


def watcher_bench(voxd, model, count, threads):
    with tempfile.TemporaryDirectory() as home:
        folder = os.path.join(home, "drop")
        os.makedirs(folder)
        config = (f'[vision]\nfolders = ["{folder}"]\nmodel = "{model}"\n'
                  'idle_unload_secs = 0\n')
        daemon = Daemon(voxd, home, config, threads)
        try:
            staging = os.path.join(home, "staging")
            os.makedirs(staging)
            for i in range(count):
                bmp(os.path.join(staging, f"{i:04}.bmp"), 48, 48, i)
            start = time.perf_counter()
            for i in range(count):
                os.rename(os.path.join(staging, f"{i:04}.bmp"), os.path.join(folder, f"{i:04}.bmp"))
            slowest_ping = 0.0
            while True:
                asked = time.perf_counter()
                daemon.call({"cmd": "ping"})
                slowest_ping = max(slowest_ping, time.perf_counter() - asked)
                done = len(daemon.call({"cmd": "images", "action": "list"})["images"])
                if done == count:
                    break
                time.sleep(0.2)
            elapsed = time.perf_counter() - start
            return count / elapsed, elapsed, peak_rss_mib(daemon.proc.pid), slowest_ping
        finally:
            daemon.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voxd", default=default_binary())
    parser.add_argument("--tiny", required=True, help="output dir of `--example tiny_blip`")
    parser.add_argument("--base", default=os.environ.get("VOXD_BLIP_MODEL"),
                        help="BLIP base directory (default $VOXD_BLIP_MODEL)")
    parser.add_argument("--python", help="a Python with torch + transformers, for the reference")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=20, help="384×384 images to caption")
    parser.add_argument("--burst", type=int, default=1000, help="small images for the watcher")
    args = parser.parse_args()

    tiny = os.path.join(args.tiny, "model")
    with tempfile.TemporaryDirectory() as scratch:
        images = []
        for i in range(args.images):
            images.append(os.path.join(scratch, f"{i}.bmp"))
            bmp(images[-1], 384, 384, i)
        models = [("tiny", tiny)] + ([("base", args.base)] if args.base else [])
        print(f"captioning {args.images} images of 384×384, {args.threads} threads")
        for name, model in models:
            per_s, peak, example = caption_bench(args.voxd, model, images, args.threads)
            line = f"  {name:5} voxd: {per_s:7.2f} images/s, peak RSS {peak:6.0f} MiB"
            if args.python:
                ref_s, ref_peak = reference_bench(args.python, model, images, args.threads)
                line += (f" | transformers: {ref_s:7.2f} images/s, peak RSS {ref_peak:6.0f} MiB"
                         f" | speed ratio voxd/transformers {per_s / ref_s:.2f}")
            print(line)
            print(f"        e.g. {example!r}")
    per_s, elapsed, peak, slowest = watcher_bench(args.voxd, tiny, args.burst, args.threads)
    print(f"watcher, {args.burst} images of 48×48 dropped at once (tiny model): "
          f"{per_s:.1f} images/s ({elapsed:.1f} s incl. the 1 s settle), "
          f"peak RSS {peak:.0f} MiB, slowest ping {slowest * 1000:.0f} ms")


if __name__ == "__main__":
    sys.exit(main())
