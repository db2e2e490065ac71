"""Drives voxd's HTTP API with the real `openai` package (tests/http.rs).

Usage: openai_client.py BASE_URL RAW_MODEL. Every check raises on failure;
the last line printed is a JSON summary that the Rust test reads.
"""
import json
import math
import sys

import openai

base, raw = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=300)
summary = {}


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def ask(question, **kw):
    return client.chat.completions.create(
        model="voxd", messages=[{"role": "user", "content": question}], **kw
    )


# The models: the assistant, then the raw language model.
models = [m.id for m in client.models.list()]
check(models == ["voxd", raw], f"models {models}")
summary["models"] = models

# A grounded answer, not streamed: the fact and its citation.
reply = ask("What is the wifi password?")
text = reply.choices[0].message.content
check("47-moon" in text, f"answer {text!r}")
check(reply.choices[0].message.role == "assistant", "role")
ext = reply.voxd
check(any(c["path"].endswith("home.md") for c in ext["citations"]), f"citations {ext}")
check(not ext["abstained"], "not abstained")
summary["answer"] = text
summary["citation"] = ext["citations"][0]

# The same, streamed: role first, text in pieces, citations at the end.
chunks = list(ask("What is the wifi password?", stream=True, stream_options={"include_usage": True}))
check(chunks[0].choices[0].delta.role == "assistant", "role in the first delta")
streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check("47-moon" in streamed, f"streamed {streamed!r}")
pieces = sum(1 for c in chunks if c.choices and c.choices[0].delta.content)
check(pieces > 1, f"streamed in {pieces} pieces")
last = [c for c in chunks if c.choices and c.choices[0].finish_reason][-1]
check(last.choices[0].finish_reason in ("stop", "length"), "finish_reason")
check(any(c["path"].endswith("home.md") for c in last.voxd["citations"]), "streamed citations")
check(chunks[-1].usage is not None and chunks[-1].choices == [], "usage chunk last")
summary["streamed_pieces"] = pieces

# A question the notes do not answer: the assistant abstains.
unknown = ask("What is the capital of Peru?")
check(unknown.voxd["abstained"] and unknown.voxd["citations"] == [], f"abstains {unknown.voxd}")
summary["abstained"] = unknown.choices[0].message.content

# The raw model, chatting (its chat template) and completing.
chat = client.chat.completions.create(
    model=raw, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
)
check(chat.choices[0].message.content.strip() != "", "raw chat text")
check(0 < chat.usage.completion_tokens <= 8, f"raw usage {chat.usage}")
check(getattr(chat, "voxd", None) is None, "no citations from the raw model")
done = client.completions.create(model=raw, prompt="The capital of France is", max_tokens=6)
check(done.choices[0].text.strip() != "", "completion text")
check(done.usage.completion_tokens <= 6, "completion length")
streamed = "".join(
    c.choices[0].text
    for c in client.completions.create(model=raw, prompt="One, two, three,", max_tokens=6, stream=True)
    if c.choices
)
check(streamed.strip() != "", "streamed completion")
summary["raw_chat"] = chat.choices[0].message.content

# Embeddings: the SDK asks for base64 by default; float works too.
pair = client.embeddings.create(model="voxd", input=["the wifi password", "the wifi password"])
a, b = pair.data[0].embedding, pair.data[1].embedding
check(len(a) == 384, f"dimension {len(a)}")
cos = sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
check(cos > 0.999, f"cosine with itself {cos}")
floats = client.embeddings.create(model="voxd", input="a kettle", encoding_format="float")
check(len(floats.data[0].embedding) == 384, "float embedding")
other = client.embeddings.create(model="voxd", input="a recipe for bread").data[0].embedding
cross = sum(x * y for x, y in zip(a, other))
check(cross < 0.9, f"different sentences differ: {cross}")
summary["cosine_self"] = cos

# Errors, as the SDK raises them.
try:
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    check(False, "an unknown model is refused")
except openai.NotFoundError as e:
    check("voxd" in str(e), f"names the models: {e}")
try:
    client.chat.completions.create(model="voxd", messages=[])
    check(False, "empty messages are refused")
except openai.BadRequestError as e:
    summary["empty_messages"] = e.body["message"]

print(json.dumps(summary))
