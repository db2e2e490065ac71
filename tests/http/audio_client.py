"""Drives voxd's audio endpoints with the real `openai` package (tests/http.rs).

Usage: audio_client.py BASE_URL CLIPS_DIR OUT_DIR. CLIPS_DIR holds the
Piper-voiced test clips 00.wav...; OUT_DIR receives speech.wav. The last
line printed is a JSON summary that the Rust test reads (and scores).
"""
import json
import pathlib
import sys
import time

import openai

base, clips, out = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=300)
summary = {}


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def transcribe(path, fmt="json"):
    with open(path, "rb") as f:
        return client.audio.transcriptions.create(model="whisper-1", file=f, response_format=fmt)


# Every clip, as JSON: the Rust test scores the corpus.
summary["transcripts"] = [transcribe(p).text for p in sorted(clips.glob("[0-9][0-9].wav"))]
check(len(summary["transcripts"]) >= 20, "all clips")

# The other formats, on one clip.
first = clips / "00.wav"
text = transcribe(first, "text")
check(isinstance(text, str) and "kitchen" in text.lower(), f"text {text!r}")
verbose = transcribe(first, "verbose_json")
check(verbose.duration > 1 and len(verbose.segments) >= 1, f"verbose {verbose}")
check(verbose.segments[0].end > verbose.segments[0].start, "segment times")
srt = transcribe(first, "srt")
check(srt.startswith("1\n00:00:") and " --> " in srt, f"srt {srt!r}")
vtt = transcribe(first, "vtt")
check(vtt.startswith("WEBVTT\n\n00:00:") and "kitchen" in vtt.lower(), f"vtt {vtt!r}")
summary["formats"] = {"text": text, "srt": srt, "vtt": vtt}

# Not audio: a precise error, and the server serves on.
try:
    client.audio.transcriptions.create(model="whisper-1", file=("song.mp3", b"ID3\x04" + b"\0" * 64))
    check(False, "an MP3 is refused")
except openai.BadRequestError as e:
    check("song.mp3" in str(e) and "WAV" in str(e), f"says why: {e}")
    summary["not_wav"] = e.body["message"]

# Speech as raw PCM (this also loads the voice before the timing below).
pcm = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there.", response_format="pcm")
check(len(pcm.content) % 2 == 0 and len(pcm.content) > 24000, f"pcm {len(pcm.content)} bytes")

# Speech, streamed: the first bytes come before the last sentence is made.
said = (
    "The kettle is in the kitchen. The spare key hangs by the back door. "
    "The bins go out on Tuesday night."
)
started = time.monotonic()
first_at = None
audio = b""
with client.audio.speech.with_streaming_response.create(
    model="tts-1", voice="alloy", input=said, response_format="wav"
) as response:
    check(response.headers["content-type"] == "audio/wav", "wav")
    for chunk in response.iter_bytes(4096):
        if first_at is None:
            first_at = time.monotonic() - started
        audio += chunk
total = time.monotonic() - started
check(audio[:4] == b"RIFF" and len(audio) > 44 + 22050, f"{len(audio)} bytes of WAV")
(out / "speech.wav").write_bytes(audio)
summary["speech"] = {"said": said, "first_byte_s": first_at, "total_s": total, "bytes": len(audio)}

try:
    client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", response_format="mp3")
    check(False, "mp3 is refused")
except openai.BadRequestError as e:
    check("wav or pcm" in str(e), f"{e}")

print(json.dumps(summary))
