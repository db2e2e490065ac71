"""A Wyoming client for tests/wyoming.rs, on the real `wyoming` package.

    client.py URI SCENARIO [ARGS...]

Each scenario talks to the server at URI the way Home Assistant does (one
connection per request) and prints one JSON object of what it saw on
stdout: tests/wyoming.rs makes the assertions. Audio the server sends is
written to WAV files so the test can hear it back through Whisper.
"""

import asyncio
import json
import sys
import time
import wave

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.handle import Handled, HandledChunk, NotHandled
from wyoming.info import Describe, Info, SelectProgram
from wyoming.ping import Ping, Pong
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)
from wyoming.wake import Detect, Detection, NotDetected

TIMEOUT = 120.0
SAMPLES_PER_CHUNK = 1024


def client(uri):
    return AsyncClient.from_uri(uri, connect_timeout=10.0, read_timeout=TIMEOUT)


def event_record(event):
    """An event as the test sees it: type, data, payload size."""
    return {"type": event.type, "data": event.data, "payload": len(event.payload or b"")}


async def send_wav(conn, path):
    """audio-start, 1,024-frame audio-chunks, audio-stop of a WAV file."""
    with wave.open(path, "rb") as wav:
        rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
        await conn.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
        while True:
            frames = wav.readframes(SAMPLES_PER_CHUNK)
            if not frames:
                break
            chunk = AudioChunk(rate=rate, width=width, channels=channels, audio=frames)
            await conn.write_event(chunk.event())
    await conn.write_event(AudioStop().event())


async def read_until(conn, done):
    """Events until one for which `done(event)` is true (included)."""
    events = []
    while True:
        event = await conn.read_event()
        if event is None:
            events.append({"type": "<closed>"})
            return events
        events.append(event)
        if done(event):
            return events


def write_wav(path, rate, width, channels, pcm):
    with wave.open(path, "wb") as wav:
        wav.setframerate(rate)
        wav.setsampwidth(width)
        wav.setnchannels(channels)
        wav.writeframes(pcm)


def audio_record(events, out):
    """What the test checks of the speech in `events`; its PCM to `out`."""
    formats, chunks, pcm = [], [], b""
    for event in events:
        if AudioStart.is_type(event.type):
            start = AudioStart.from_event(event)
            formats.append([start.rate, start.width, start.channels])
        elif AudioChunk.is_type(event.type):
            chunk = AudioChunk.from_event(event)
            chunks.append(len(chunk.audio) // (chunk.width * chunk.channels))
            pcm += chunk.audio
    if formats:
        write_wav(out, *formats[0], pcm)
    return {
        "types": [e.type for e in events],
        "formats": formats,
        "chunks": chunks,
    }


async def describe(uri):
    async with client(uri) as conn:
        started = time.monotonic()
        await conn.write_event(Describe().event())
        events = await read_until(conn, lambda e: Info.is_type(e.type))
        elapsed_ms = (time.monotonic() - started) * 1000
    info = Info.from_event(events[-1])
    return {"elapsed_ms": elapsed_ms, "info": info.event().data, "raw": events[-1].data}


async def transcribe(uri, path):
    async with client(uri) as conn:
        # As wyoming 1.11 clients may: pick the program first.
        await conn.write_event(SelectProgram(name="voxd-stt").event())
        await conn.write_event(Transcribe(language="en").event())
        await send_wav(conn, path)
        events = await read_until(conn, lambda e: Transcript.is_type(e.type))
    transcript = Transcript.from_event(events[-1])
    return {"text": transcript.text, "language": transcript.language}


async def parallel(uri, paths):
    """Transcriptions of `paths` at once, one connection each, with a
    describe among them: Home Assistant opens a connection per request."""
    results = await asyncio.gather(describe(uri), *(transcribe(uri, p) for p in paths))
    return {"described": "asr" in results[0]["info"], "texts": [r["text"] for r in results[1:]]}


async def synthesize(uri, text, voice, out):
    async with client(uri) as conn:
        await conn.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice)).event())
        events = await read_until(conn, lambda e: AudioStop.is_type(e.type))
    return audio_record(events, out)


async def synthesize_stream(uri, text, voice, out):
    """Home Assistant's streaming TTS: the text word by word; after the
    first sentence, wait for its audio (the server must not wait for
    synthesize-stop); the whole text again as `synthesize` in the middle
    of the stream (for old servers: to be ignored); then synthesize-stop."""
    words = text.split(" ")
    first_end = next(i for i, w in enumerate(words) if w.endswith("."))
    async with client(uri) as conn:
        await conn.write_event(SynthesizeStart(voice=SynthesizeVoice(name=voice)).event())
        for word in words[: first_end + 1]:
            await conn.write_event(SynthesizeChunk(text=word + " ").event())
        # The first sentence is complete: its audio comes before the stream ends.
        events = await read_until(conn, lambda e: AudioStop.is_type(e.type))
        rest = words[first_end + 1 :]
        middle = len(rest) // 2
        for word in rest[:middle]:
            await conn.write_event(SynthesizeChunk(text=word + " ").event())
        await conn.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice)).event())
        for word in rest[middle:]:
            await conn.write_event(SynthesizeChunk(text=word + " ").event())
        await conn.write_event(SynthesizeStop().event())
        events += await read_until(conn, lambda e: SynthesizeStopped.is_type(e.type))
    return audio_record(events, out)


async def wake(uri, path, names):
    async with client(uri) as conn:
        await conn.write_event(Detect(names=names).event())
        await send_wav(conn, path)
        # A ping after audio-stop: its pong ends whatever the server had to say.
        await conn.write_event(Ping(text="end").event())
        events = await read_until(conn, lambda e: Pong.is_type(e.type))
    return {"events": [event_record(e) for e in events]}


async def handle(uri, text):
    async with client(uri) as conn:
        context = {"conversation_id": "ha-conversation-1"}
        await conn.write_event(Transcript(text=text, context=context).event())
        events = await read_until(conn, lambda e: e.type == "handled-stop")
    chunks = "".join(HandledChunk.from_event(e).text for e in events if HandledChunk.is_type(e.type))
    handled = [Handled.from_event(e) for e in events if Handled.is_type(e.type)]
    not_handled = [NotHandled.from_event(e).text for e in events if NotHandled.is_type(e.type)]
    return {
        "types": [e.type for e in events],
        "chunks": chunks,
        "handled": [{"text": h.text, "context": h.context} for h in handled],
        "not_handled": not_handled,
    }


async def ping(uri):
    async with client(uri) as conn:
        await conn.write_event(Ping(text="still there?").event())
        event = await conn.read_event()
    return {"pong": Pong.is_type(event.type), "text": Pong.from_event(event).text}


async def raw_connection(uri):
    if uri.startswith("tcp://"):
        host, port = uri[len("tcp://") :].rsplit(":", 1)
        return await asyncio.open_connection(host, int(port))
    return await asyncio.open_unix_connection(uri[len("unix://") :])


async def bad(uri, case, header_limit, payload_limit):
    """A bad input on its own connection: the server's error, and whether
    it then closed the connection. Raw bytes where the package would
    refuse to write them."""
    if case in ("garbage", "oversized_header", "oversized_payload"):
        reader, writer = await raw_connection(uri)
        if case == "garbage":
            writer.write(b"hello there, this is not JSON\n")
        elif case == "oversized_header":
            filler = "x" * (header_limit + 100)
            writer.write(json.dumps({"type": "ping", "data": {"text": filler}}).encode() + b"\n")
        else:
            header = {"type": "audio-chunk", "payload_length": payload_limit + 1}
            writer.write(json.dumps(header).encode() + b"\n")
        await writer.drain()
        conn = client(uri)
        conn._reader, conn._writer = reader, writer
    else:
        conn = client(uri)
        await conn.connect()
        if case == "unknown_type":
            await conn.write_event(Event(type="fly-to-the-moon", data={"now": True}))
        elif case == "chunk_before_start":
            chunk = AudioChunk(rate=16000, width=2, channels=1, audio=b"\0\0" * 1024)
            await conn.write_event(chunk.event())
        elif case == "bad_audio_format":
            await conn.write_event(Transcribe().event())
            await conn.write_event(Event(type="audio-start", data={"rate": 16000, "width": 9, "channels": 1}))
        elif case == "unknown_program":
            await conn.write_event(SelectProgram(name="faster-whisper").event())
        elif case in ("busy", "idle"):
            pass  # the server speaks first
        elif case == "missing_model":
            await conn.write_event(Transcribe().event())
            await conn.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            chunk = AudioChunk(rate=16000, width=2, channels=1, audio=b"\0\0" * 16000)
            await conn.write_event(chunk.event())
            await conn.write_event(AudioStop().event())
        else:
            raise SystemExit(f"unknown case {case}")
    error = await conn.read_event()
    after = await conn.read_event() if error is not None else None
    return {
        "error": Error.from_event(error).event().data if error and Error.is_type(error.type) else None,
        "first": error.type if error else None,
        "closed": after is None,
    }


async def main(argv):
    uri, scenario, args = argv[1], argv[2], argv[3:]
    if scenario == "describe":
        result = await describe(uri)
    elif scenario == "transcribe":
        result = await transcribe(uri, args[0])
    elif scenario == "parallel":
        result = await parallel(uri, args)
    elif scenario == "synthesize":
        result = await synthesize(uri, *args)
    elif scenario == "synthesize-stream":
        result = await synthesize_stream(uri, *args)
    elif scenario == "wake":
        result = await wake(uri, args[0], args[1:])
    elif scenario == "handle":
        result = await handle(uri, args[0])
    elif scenario == "ping":
        result = await ping(uri)
    elif scenario == "bad":
        result = await bad(uri, args[0], int(args[1]), int(args[2]))
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main(sys.argv))
