#!/usr/bin/env python3
"""Reference embeddings for all-MiniLM-L6-v2, to check voxd's candle
embedder (src/rag/embed.rs) against an independent implementation.

    python3 bench/minilm_reference.py [MODEL_DIR]

BERT's forward pass written out in numpy from the Hugging Face modelling
code (absolute positions, post-LayerNorm, exact GELU), the same
tokenizer.json through the `tokenizers` package, mean pooling over real
tokens and L2 normalisation as sentence-transformers does. Needs
numpy, tokenizers and safetensors (pip); torch is not reachable offline
here (its PyPI wheels pull GBs of CUDA libraries). Prints the cosine
similarity of the pairs the Rust unit test `embed::tests` pins.
"""

import math
import os
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

PAIRS = [
    ("What is the wifi password?", "The wifi password is kettle-47-moon."),
    ("What is the wifi password?", "Maria Okonkwo's birthday is on 14 March."),
    ("When is Maria's birthday?", "Maria Okonkwo's birthday is on 14 March."),
    ("The front door code is 4417.", "Updated: the front door code is now 5820."),
    ("A man is playing a guitar.", "Someone plays an instrument."),
]


def layer_norm(x, w, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def embed(w, tok, text, layers=6, heads=12):
    ids = np.array(tok.encode(text).ids)
    t = len(ids)
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][:t]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    d = x.shape[1] // heads
    for i in range(layers):
        p = f"encoder.layer.{i}."
        lin = lambda n, h: h @ w[p + n + ".weight"].T + w[p + n + ".bias"]
        q, k, v = (lin(f"attention.self.{n}", x).reshape(t, heads, d).transpose(1, 0, 2)
                   for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(t, heads * d)
        x = layer_norm(lin("attention.output.dense", ctx) + x,
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        h = gelu(lin("intermediate.dense", x))
        x = layer_norm(lin("output.dense", h) + x,
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    v = x.mean(0)
    return v / np.linalg.norm(v)


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser(
        "~/.cache/voxd/test-models/all-minilm-l6-v2")
    w = {k: v.astype(np.float64) for k, v in load_file(os.path.join(d, "model.safetensors")).items()}
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    tok.no_padding()
    for a, b in PAIRS:
        print(f"{float(embed(w, tok, a) @ embed(w, tok, b)):.4f}  {a!r} ~ {b!r}")
    v = embed(w, tok, PAIRS[0][0])
    print("first 4 dims of", repr(PAIRS[0][0]), np.round(v[:4], 5).tolist())


if __name__ == "__main__":
    main()
