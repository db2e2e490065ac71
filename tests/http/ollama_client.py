"""Drives voxd's HTTP API with the real `ollama` package (tests/http.rs).

Usage: ollama_client.py BASE_URL RAW_MODEL. Every check raises on failure;
the last line printed is a JSON summary that the Rust test reads.
"""
import json
import sys

import ollama

base, raw = sys.argv[1], sys.argv[2]
client = ollama.Client(host=base, timeout=300)
summary = {}


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


names = [m.model for m in client.list().models]
check(names == ["voxd:latest", f"{raw}:latest"], f"models {names}")
summary["models"] = names

shown = client.show("voxd")
check("notes" in shown.modelfile, f"show {shown}")

question = [{"role": "user", "content": "What is the wifi password?"}]
# As Home Assistant's integration calls it: streamed, keep_alive, num_ctx, tools.
parts = list(
    client.chat(
        model="voxd:latest",
        messages=question,
        stream=True,
        keep_alive="5m",
        options={"num_ctx": 2048},
        tools=[{"type": "function", "function": {"name": "HassTurnOn", "parameters": {"type": "object", "properties": {}}}}],
    )
)
check(parts[-1].done and all(not p.done for p in parts[:-1]), "done only at the end")
check(parts[0].message.role == "assistant", "role")
text = "".join(p.message.content for p in parts)
check("47-moon" in text, f"streamed {text!r}")
check(parts[-1].done_reason in ("stop", "length"), "done_reason")
check(not parts[-1].message.tool_calls, "no tool calls")
summary["streamed_parts"] = len(parts)

whole = client.chat(model="voxd", messages=question, stream=False)
check("47-moon" in whole.message.content, f"answer {whole.message.content!r}")
check(whole.done, "done")
summary["answer"] = whole.message.content

generated = client.generate(model=raw, prompt="The capital of France is", options={"num_predict": 6})
check(generated.response.strip() != "" and generated.eval_count <= 6, f"generate {generated}")

vectors = client.embed(model="voxd", input=["the wifi password", "a recipe for bread"]).embeddings
check(len(vectors) == 2 and len(vectors[0]) == 384, "embed")
summary["dimension"] = len(vectors[0])

try:
    client.chat(model="llama3", messages=question)
    check(False, "an unknown model is refused")
except ollama.ResponseError as e:
    check(e.status_code == 404, f"404 for an unknown model: {e}")
try:
    client.pull("voxd")
    check(False, "pull is refused")
except ollama.ResponseError as e:
    check("voxd models pull" in e.error, f"pull points to the CLI: {e}")
    summary["pull"] = e.error

print(json.dumps(summary))
