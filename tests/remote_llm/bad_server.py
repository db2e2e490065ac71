"""An OpenAI-compatible server that misbehaves on purpose, for
tests/remote_llm.rs: what voxd does with each bad answer a real server can
give (no answer, an HTTP error, a broken or malformed stream).

The first path segment picks the behaviour: a base URL of
http://127.0.0.1:PORT/<mode>/v1. `GET <mode>/v1/models` and
`GET <mode>/props` answer normally (a model without a chat template), except
in `hang`; `POST <mode>/v1/completions` misbehaves:

  hang       never answers anything (not even the model list)
  stall      sends the headers, then nothing
  http500    HTTP 500 with an OpenAI error body
  malformed  one token, then an event that is not JSON
  truncated  two tokens, then closes without [DONE]
  huge       one token, then a 2 MiB line
  badutf8    an event with bytes that are not UTF-8
  error      one token, then an error event
  ok         "Hello world", properly ended

Usage: bad_server.py PORT (prints "ready" once listening).
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def event(obj):
    return ("data: " + json.dumps(obj) + "\n\n").encode()


def piece(text, finish=None):
    return event({"choices": [{"text": text, "index": 0, "finish_reason": finish}]})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def split(self):
        _, mode, rest = self.path.split("/", 2)
        return mode, "/" + rest

    def reply_json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        mode, rest = self.split()
        if mode == "hang":
            time.sleep(3600)
        if rest == "/v1/models":
            self.reply_json(200, {"object": "list", "data": [{"id": "scripted"}]})
        elif rest == "/props":
            self.reply_json(200, {"chat_template": "", "default_generation_settings": {"n_ctx": 2048}})
        else:
            self.reply_json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        mode, _ = self.split()
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if mode == "hang":
            time.sleep(3600)
        if mode == "http500":
            self.reply_json(500, {"error": {"message": "out of memory", "type": "server_error"}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        out = self.wfile
        if mode == "stall":
            out.flush()
            time.sleep(3600)
        elif mode == "malformed":
            out.write(piece("Hello"))
            out.write(b"data: {not json\n\n")
        elif mode == "truncated":
            out.write(piece("Hello"))
            out.write(piece(" world"))
        elif mode == "huge":
            out.write(piece("Hello"))
            out.write(b"data: " + b"x" * (2 << 20) + b"\n\n")
        elif mode == "badutf8":
            out.write(b'data: {"choices":[{"text":"\xff\xfe","index":0}]}\n\n')
        elif mode == "error":
            out.write(piece("Hello"))
            out.write(event({"error": {"message": "the slot crashed", "type": "server_error"}}))
        elif mode == "ok":
            out.write(piece("Hello"))
            out.write(piece(" world", "stop"))
            out.write(b"data: [DONE]\n\n")
        out.flush()
        self.close_connection = True


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
