"""A small OpenAI-compatible chat-completions server on 127.0.0.1, in a thread.

It stands in for Ollama, vLLM or llama.cpp's server at the HTTP seam; what
it answers is chosen by the model name it is asked for.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.routing import Route

from tests.support.threaded_app import ThreadedApp


class FakeUpstream:
    """A tiny OpenAI-compatible server on 127.0.0.1, run in a thread.

    What it does is chosen by the model name it is asked for.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )
        self._app = ThreadedApp(app)
        self.url = self._app.base_url + "/v1"

    def start(self) -> None:
        self._app.start()

    def stop(self) -> None:
        self._app.stop()

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": []})

    async def _chat(self, request: Request) -> Response:
        payload = await request.json()
        self.requests.append(
            {
                "json": payload,
                "authorization": request.headers.get("authorization"),
                "traceparent": request.headers.get("traceparent"),
            }
        )
        model = payload["model"]
        content = f"upstream answer to: {payload['messages'][0]['content']}"
        if model.startswith(ECHO_KEY_AT):
            return echo_key(request.headers.get("authorization", ""), model)
        if model == "fail-500":
            return PlainTextResponse("model crashed", status_code=500)
        if model.startswith("fail-50"):
            # A proxy's error page: several lines of HTML.
            return HTMLResponse(error_page(int(model[5:])), status_code=int(model[5:]))
        if model == "fail-429":
            return PlainTextResponse("slow down", status_code=429)
        if model == "fail-400":
            return JSONResponse(
                {"error": {"message": "unknown model"}}, status_code=400
            )
        if model == "echo-key":
            # Some servers quote the credentials they refuse.
            header = request.headers.get("authorization", "")
            return JSONResponse(
                {"error": {"message": f"invalid key in {header!r}"}}, status_code=401
            )
        if model == "echo-key-in-headers":
            # ... or send them back in a header of a refusal.
            header = request.headers.get("authorization", "")
            return PlainTextResponse(
                "slow down", status_code=429, headers={"x-echo": header}
            )
        if model == "not-json":
            return PlainTextResponse("<html>502 Bad Gateway</html>")
        if model == "no-choices":
            return JSONResponse({"model": model, "choices": []})
        if model == "slow":
            await asyncio.sleep(5)
        if model == "empty":
            content = ""
        if model == "substitute-me":
            model = "qwen2.5-0.5b-instruct"
        return JSONResponse(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": 11,
                    "completion_tokens": 7,
                    "total_tokens": 18,
                },
            }
        )


def error_page(status: int) -> str:
    """A multi-line HTML error page, as nginx and friends send."""
    return (
        f"<html>\r\n<head><title>{status} Error</title></head>\r\n<body>\r\n"
        f"<center><h1>{status}   Error</h1></center>\r\n\t<hr><center>nginx"
        "</center>\r\n</body>\r\n</html>\r\n"
    )


# "echo-key-at-N-SHAPE": the bearer token quoted after N characters, in a
# reply of SHAPE: "error" (JSON error, HTTP 401), "escaped" (the same with
# the key in JSON escapes), "text" (not JSON, HTTP 200) or "answer" (a
# completion that quotes it in its answer and its id).
ECHO_KEY_AT = "echo-key-at-"
FILLER = "x"


def echo_key(authorization: str, model: str) -> Response:
    offset, shape = model.removeprefix(ECHO_KEY_AT).split("-", 1)
    key = authorization.removeprefix("Bearer ")
    text = FILLER * int(offset) + key + FILLER * 600
    if shape == "error":
        return JSONResponse({"error": {"message": text}}, status_code=401)
    if shape == "escaped":
        escaped = "".join(f"\\u{ord(char):04x}" for char in key)
        body = f'{{"error": {{"message": "{FILLER * int(offset)}{escaped}"}}}}'
        return Response(body, status_code=401, media_type="application/json")
    if shape == "text":
        return PlainTextResponse(text)
    return JSONResponse(
        {
            "id": f"chatcmpl-{key}",
            "model": model,
            "choices": [{"message": {"role": "assistant", "content": text}}],
        }
    )


def pieces_of(key: str, size: int = 5) -> list[str]:
    """Every run of `size` characters of `key`: what a cut could leave."""
    return [key[i : i + size] for i in range(len(key) - size + 1)]


def closed_loopback_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
