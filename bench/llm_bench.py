#!/usr/bin/env python3
"""LLM speed of voxd against llama.cpp's own `llama-bench`, built from the same
llama.cpp source (bench/llm-build-llama-bench.sh), on the same GGUF, threads
and batch; run it via bench/llm.sh, which builds both.

1. The worker's `bench` request (llama-bench's pp/tg loop inside voxd-llm,
   voxd's context settings) against llama-bench -p 512 / -n 64: the engine
   alone, one repetition each, alternating, --reps rounds, medians.
2. Generation as a client sees it, at a stated context depth: a `generate`
   over the daemon's socket whose prompt fills the context to D tokens,
   timed at the client from the first `llm.token` event to the last,
   (generated tokens - 1) / that interval (the first token's time is the
   prompt's, which llama-bench's tg leaves out too), 64 tokens, greedy;
   against `llama-bench -p 0 -n 64 -d D -r 1`, D being the prompt's token
   count as voxd reports it. The two alternate, --runs rounds, medians.
   This includes sampling, detokenising, the daemon and the socket; the
   worker's own tokens/s (`stats.tokens_per_sec`) is printed beside it.
3. Time to first token of a follow-up turn with and without KV reuse.
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


def llama_bench_depth(binary, model, threads, depth, n_gen):
    """One llama-bench tg run of `n_gen` tokens after `depth` tokens of
    context: tokens/s."""
    out = subprocess.run(
        [binary, "-m", model, "-t", str(threads), "-p", "0", "-n", str(n_gen), "-d", str(depth),
         "-b", str(N_PROMPT), "-ub", str(N_PROMPT), "-r", "1", "-o", "json"],
        check=True, capture_output=True, text=True).stdout
    row = next(r for r in json.loads(out) if r["n_gen"] == n_gen)
    return row["avg_ts"]


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


def engine_alone(a):
    """pp/tg of llama-bench (-r 1) and of the worker's `bench` (one
    repetition), alternating, --reps rounds: medians of (llama-bench pp,
    tg, voxd pp, tg) and llama-bench's build commit."""
    worker = Worker(a.worker)
    params = {"path": a.model, "threads": a.threads, "context": 2048, "batch": N_PROMPT}
    worker.request("load", {"model": params})
    ref_pp, ref_tg, pp, tg = [], [], [], []
    for _ in range(a.reps):
        p, t, commit = llama_bench(a.llama_bench, a.model, a.threads, 1)
        ref_pp.append(p)
        ref_tg.append(t)
        done = worker.request("bench", {"model": params, "n_prompt": N_PROMPT, "n_gen": N_GEN,
                                        "repetitions": 1})
        pp.append(done["pp_tokens_per_sec"])
        tg.append(done["tg_tokens_per_sec"])
    worker.close()
    m = statistics.median
    return m(ref_pp), m(ref_tg), m(pp), m(tg), commit


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
        """The reply's result, with `client` added: the arrival times
        (perf_counter) of the first and the last `llm.token` event."""
        self.next_id += 1
        req = {"id": self.next_id, "cmd": "generate", "prompt": prompt, "max_tokens": max_tokens}
        self.sock.sendall((json.dumps(req) + "\n").encode())
        first = last = None
        for line in self.lines:
            now = time.perf_counter()
            msg = json.loads(line)
            if msg.get("id") != self.next_id:
                continue
            if msg.get("event") == "llm.token":
                first = first or now
                last = now
            elif "event" not in msg:
                if not msg["ok"]:
                    raise RuntimeError(msg["error"])
                msg["result"]["client"] = {"first": first, "last": last}
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
    with_reuse, without, cached, prompt = [], [], 0, 0
    for _ in range(reps):
        daemon.generate(turn1, 16)  # the cache holds turn one again
        r = daemon.generate(turn2, N_GEN)
        with_reuse.append(r["stats"]["first_token_ms"])
        cached, prompt = r["stats"]["cached_tokens"], r["stats"]["prompt_tokens"]
        daemon.generate("Something else entirely.", 1)  # evicts the shared prefix
        r = daemon.generate(turn2, N_GEN)
        without.append(r["stats"]["first_token_ms"])
    return statistics.median(with_reuse), statistics.median(without), cached, prompt


def counting(k):
    """A prompt the model goes on continuing greedily: "1, 2, ..., k,"."""
    return ", ".join(str(i) for i in range(1, k + 1)) + ","


def depth_prompt(daemon, depth):
    """The counting prompt whose token count comes closest to `depth`
    (at least 8 numbers): (prompt, its tokens as voxd counts them)."""
    k = max(8, depth // 4)
    for _ in range(4):
        tokens = daemon.generate(counting(k), 1)["stats"]["prompt_tokens"]
        if depth <= tokens <= depth + 8 or k == 8 and tokens >= depth:
            break
        k = max(8, round(k * depth / tokens))
    return counting(k), daemon.generate(counting(k), 1)["stats"]["prompt_tokens"]


def at_depth(daemon, a, depth):
    """Client-timed generation at `depth` against llama-bench at the same
    depth, alternating: medians of (client tokens/s, worker tokens/s,
    llama-bench tokens/s, tokens generated), and the depth."""
    prompt, tokens = depth_prompt(daemon, depth)
    client, worker, ref, generated = [], [], [], []
    for _ in range(a.runs):
        r = daemon.generate(prompt, N_GEN)
        n = r["stats"]["generated_tokens"]
        if n < N_GEN // 2:
            raise RuntimeError(f"only {n} tokens generated at depth {tokens}: {r['text']!r}")
        t = r["client"]
        client.append((n - 1) / (t["last"] - t["first"]))
        worker.append(r["stats"]["tokens_per_sec"])
        generated.append(n)
        ref.append(llama_bench_depth(a.llama_bench, a.model, a.threads, tokens, N_GEN))
    m = statistics.median
    return tokens, m(client), m(worker), m(ref), m(generated)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("--voxd", required=True)
    ap.add_argument("--worker", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5, help="rounds of the pp/tg engine tests")
    ap.add_argument("--runs", type=int, default=5, help="rounds of client-timed generation")
    ap.add_argument("--depths", default="0,512",
                    help="context depths (prompt tokens) for client-timed generation")
    a = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")

    ref_pp, ref_tg, pp, tg, commit = engine_alone(a)
    daemon = Daemon(a.voxd, a.worker, a.model, a.threads)
    try:
        daemon.generate("Warm-up.", 1)
        depths = [at_depth(daemon, a, int(d)) for d in a.depths.split(",")]
        ttft_reuse, ttft_cold, cached, prompt = follow_up(daemon, a.reps)
    finally:
        daemon.close()

    print(f"model {os.path.basename(a.model)}, {a.threads} threads, batch {N_PROMPT}; "
          f"llama-bench build {commit}")
    print(f"\nthe engine alone, {a.reps} alternating rounds (medians)")
    print(f"{'test':<34}{'llama-bench':>12}{'voxd':>10}{'ratio':>8}")
    print(f"{'pp512 tokens/s (worker bench)':<34}{ref_pp:>12.1f}{pp:>10.1f}{pp / ref_pp:>8.3f}")
    print(f"{'tg64 tokens/s (worker bench)':<34}{ref_tg:>12.1f}{tg:>10.1f}{tg / ref_tg:>8.3f}")
    print(f"\ngeneration of {N_GEN} tokens at a context depth, timed at the client, "
          f"{a.runs} alternating rounds (medians)")
    print(f"{'depth (prompt tokens)':<22}{'llama-bench -d':>15}{'voxd client':>12}{'ratio':>8}"
          f"{'worker own':>12}{'generated':>10}")
    for tokens, client, worker, ref, n in depths:
        print(f"{tokens:<22}{ref:>15.1f}{client:>12.1f}{client / ref:>8.3f}{worker:>12.1f}"
              f"{n:>10.0f}")
    print(f"\nfollow-up turn ({prompt} prompt tokens): first token in {ttft_reuse:.0f} ms with "
          f"KV reuse ({cached} tokens cached), {ttft_cold:.0f} ms without "
          f"({ttft_cold / ttft_reuse:.1f}x)")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
