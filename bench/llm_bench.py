#!/usr/bin/env python3
"""LLM speed of voxd against llama.cpp's llama-bench; run it via bench/llm.sh,
which builds both. Prints a table of tokens/s and their ratios, and the time
to first token of a follow-up turn with and without KV cache reuse.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time

N_PROMPT = 512
N_GEN = 64


def llama_bench(binary, model, threads, reps):
    out = subprocess.run(
        [binary, "-m", model, "-t", str(threads), "-p", str(N_PROMPT), "-n", str(N_GEN),
         "-b", str(N_PROMPT), "-ub", str(N_PROMPT), "-r", str(reps), "-o", "json"],
        check=True, capture_output=True, text=True).stdout
    rows = json.loads(out)
    pp = next(r for r in rows if r["n_prompt"] == N_PROMPT and r["n_gen"] == 0)
    tg = next(r for r in rows if r["n_gen"] == N_GEN and r["n_prompt"] == 0)
    return pp["avg_ts"], tg["avg_ts"], pp.get("build_commit", "?")


class Worker:
    """voxd-llm spoken to directly over stdio (voxd-proto = Wyoming framing)."""

    def __init__(self, binary):
        self.proc = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        kind, _ = self.read()
        assert kind == "info", kind

    def send(self, kind, data):
        body = json.dumps(data).encode()
        header = json.dumps({"type": kind, "version": "1.0.0", "data_length": len(body)})
        self.proc.stdin.write(header.encode() + b"\n" + body)
        self.proc.stdin.flush()

    def read(self):
        header = json.loads(self.proc.stdout.readline())
        body = self.proc.stdout.read(header.get("data_length", 0))
        self.proc.stdout.read(header.get("payload_length", 0))
        return header["type"], (json.loads(body) if body else {})

    def request(self, kind, data):
        self.send(kind, data)
        while True:
            kind, body = self.read()
            if kind == "done":
                return body
            if kind == "error":
                raise RuntimeError(body)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def voxd_bench(binary, model, threads, reps):
    worker = Worker(binary)
    params = {"path": model, "threads": threads, "context": 2048, "batch": N_PROMPT}
    worker.request("load", {"model": params})
    done = worker.request("bench", {"model": params, "n_prompt": N_PROMPT, "n_gen": N_GEN,
                                    "repetitions": reps})
    worker.close()
    return done["pp_tokens_per_sec"], done["tg_tokens_per_sec"]


class Daemon:
    def __init__(self, voxd, worker, model, threads):
        self.home = tempfile.TemporaryDirectory(prefix="voxd-bench-")
        home = self.home.name
        run = os.path.join(home, "run")
        os.makedirs(run)
        config = os.path.join(home, "voxd.toml")
        with open(config, "w") as f:
            f.write(f'[engines]\nidle_unload_secs = 0\n[engines.llm]\ncommand = "{worker}"\n'
                    f'model = "{model}"\nthreads = {threads}\ncontext = 2048\nbatch = 256\n'
                    f'max_tokens = 256\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOXD_")}
        env.update(HOME=home, XDG_RUNTIME_DIR=run, XDG_CONFIG_HOME=home)
        self.proc = subprocess.Popen([voxd, "--config", config, "serve"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        path = os.path.join(run, "voxd", "voxd.sock")
        deadline = time.time() + 20
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.lines = self.sock.makefile("r")
        self.next_id = 0

    def generate(self, prompt, max_tokens):
        self.next_id += 1
        req = {"id": self.next_id, "cmd": "generate", "prompt": prompt, "max_tokens": max_tokens}
        self.sock.sendall((json.dumps(req) + "\n").encode())
        for line in self.lines:
            msg = json.loads(line)
            if msg.get("id") == self.next_id and "event" not in msg:
                if not msg["ok"]:
                    raise RuntimeError(msg["error"])
                return msg["result"]
        raise RuntimeError("voxd closed the connection")

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)
        self.home.cleanup()


NOTES = ("Notes. " + "The blue door on the north side of the old mill opens only in winter, "
         "and the key hangs behind the third beam in the barn. " * 14)


def follow_up(daemon, reps):
    """First-token time of turn two, with its prefix cached and without."""
    daemon.generate("Warm-up.", 1)
    turn1 = NOTES + "\nQuestion: which door opens in winter?\nAnswer:"
    reply = daemon.generate(turn1, 16)["text"]
    turn2 = turn1 + reply + "\nQuestion: where is the key?\nAnswer:"
    with_reuse, without, gen_tps, cached, prompt = [], [], [], 0, 0
    for _ in range(reps):
        daemon.generate(turn1, 16)  # the cache holds turn one again
        r = daemon.generate(turn2, N_GEN)
        with_reuse.append(r["stats"]["first_token_ms"])
        cached, prompt = r["stats"]["cached_tokens"], r["stats"]["prompt_tokens"]
        daemon.generate("Something else entirely.", 1)  # evicts the shared prefix
        r = daemon.generate(turn2, N_GEN)
        without.append(r["stats"]["first_token_ms"])
        if r["stats"]["generated_tokens"] > 8:
            gen_tps.append(r["stats"]["tokens_per_sec"])
    return (statistics.median(with_reuse), statistics.median(without), cached, prompt,
            statistics.median(gen_tps) if gen_tps else float("nan"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("--voxd", required=True)
    ap.add_argument("--worker", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()

    ref_pp, ref_tg, commit = llama_bench(a.llama_bench, a.model, a.threads, a.reps)
    pp, tg = voxd_bench(a.worker, a.model, a.threads, a.reps)
    daemon = Daemon(a.voxd, a.worker, a.model, a.threads)
    try:
        ttft_reuse, ttft_cold, cached, prompt, gen_tps = follow_up(daemon, a.reps)
    finally:
        daemon.close()

    print(f"model {os.path.basename(a.model)}, {a.threads} threads, batch {N_PROMPT}, "
          f"{a.reps} repetitions; llama-bench build {commit}")
    print(f"{'test':<34}{'llama-bench':>12}{'voxd':>10}{'ratio':>8}")
    print(f"{'pp512 tokens/s (worker bench)':<34}{ref_pp:>12.1f}{pp:>10.1f}{pp / ref_pp:>8.3f}")
    print(f"{'tg64 tokens/s (worker bench)':<34}{ref_tg:>12.1f}{tg:>10.1f}{tg / ref_tg:>8.3f}")
    print(f"{'generation tokens/s (socket)':<34}{ref_tg:>12.1f}{gen_tps:>10.1f}"
          f"{gen_tps / ref_tg:>8.3f}")
    print(f"follow-up turn ({prompt} prompt tokens): first token in {ttft_reuse:.0f} ms with "
          f"KV reuse ({cached} tokens cached), {ttft_cold:.0f} ms without "
          f"({ttft_cold / ttft_reuse:.1f}x)")


if __name__ == "__main__":
    main()
