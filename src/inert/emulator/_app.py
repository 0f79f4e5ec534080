"""The ASGI application: OpenAI's routes over ``State``, with auth and faults."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from inert._json import JSONObject, op_key

from ._answers import CHAT_PATH, EMBEDDINGS_PATH, error_body
from ._ratelimit import RateLimited, RateLimits
from ._state import ApiError, State

FILE_PURPOSES: Final = (
    "assistants", "batch", "fine-tune", "vision", "user_data", "evals",
)  # fmt: skip


class DropConnection(Exception):
    """Raised after a response has started so that uvicorn closes the connection."""


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging the connections the emulator drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DropConnection)


_quiet = _QuietDrops()
logging.getLogger("uvicorn.error").addFilter(_quiet)


class _Dropped(Response):
    """Starts a response that promises a body, then drops the connection."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")],
            }
        )
        raise DropConnection


def _error(status: int, body: JSONObject, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(
            400,
            error_body(
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly.)"
            ),
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, error_body("The request body must be a JSON object."))
    return body


def build_app(
    state: State, *, api_key: str | None, rate_limits: RateLimits | None = None
) -> ASGIApp:
    """The emulator's ASGI app (auth first, then rate limits, then OpenAI's routes)."""

    async def model_call(request: Request, endpoint: str) -> Response:
        if state.latency_ms > 0:
            await asyncio.sleep(state.latency_ms / 1000)
        body = await _json_body(request)
        fault = state.draw_attempt_fault()
        if fault == "rate_limit":
            delay = max(0.001, 0.05 * state.time_scale)
            return _error(
                429,
                error_body(
                    "Rate limit reached for requests (emulated). Please try again shortly.",
                    type="requests",
                    code="rate_limit_exceeded",
                ),
                headers={"retry-after": f"{delay:.3f}", "retry-after-ms": str(round(delay * 1000))},
            )
        if fault == "server_error":
            with state.lock:
                status = state.rng.choice((500, 503))
            message = (
                "The server had an error while processing your request. Sorry about that!"
                if status == 500
                else "The engine is currently overloaded, please try again later."
            )
            return _error(status, error_body(message, type="server_error", code=None))
        if fault == "disconnect":
            return _Dropped()
        status, answer, prompt, completion = state.answer(endpoint, body, batch=False)
        if status == 200:
            state.ledger.record(
                op_key(endpoint, body),
                endpoint,
                batch=False,
                prompt_tokens=prompt,
                completion_tokens=completion,
            )
        return JSONResponse(answer, status_code=status)

    async def chat(request: Request) -> Response:
        return await model_call(request, CHAT_PATH)

    async def embeddings(request: Request) -> Response:
        return await model_call(request, EMBEDDINGS_PATH)

    async def upload_file(request: Request) -> Response:
        async with request.form() as form:
            upload = form.get("file")
            purpose = form.get("purpose")
            if not isinstance(upload, UploadFile):
                raise ApiError(
                    400,
                    error_body(
                        "Missing required parameter: 'file'.",
                        param="file",
                        code="missing_required_parameter",
                    ),
                )
            if not isinstance(purpose, str) or purpose not in FILE_PURPOSES:
                raise ApiError(
                    400,
                    error_body(
                        f"Invalid 'purpose': {purpose!r}; choose from {', '.join(FILE_PURPOSES)}.",
                        param="purpose",
                        code="invalid_value",
                    ),
                )
            content = await upload.read()
            filename = upload.filename or "upload"
        return JSONResponse(state.add_file(filename, purpose, content).to_json())

    async def list_files(request: Request) -> Response:
        purpose = request.query_params.get("purpose")
        with state.lock:
            files = [f.to_json() for f in state.files.values() if purpose in (None, f.purpose)]
        return JSONResponse({"object": "list", "data": files, "has_more": False})

    async def get_file(request: Request) -> Response:
        return JSONResponse(state.get_file(request.path_params["file_id"]).to_json())

    async def file_content(request: Request) -> Response:
        stored = state.get_file(request.path_params["file_id"])
        return Response(stored.content, media_type="application/octet-stream")

    async def delete_file(request: Request) -> Response:
        file_id: str = request.path_params["file_id"]
        state.delete_file(file_id)
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    async def create_batch(request: Request) -> Response:
        return JSONResponse(state.create_batch(await _json_body(request)).to_json())

    async def get_batch(request: Request) -> Response:
        return JSONResponse(state.get_batch(request.path_params["batch_id"]).to_json())

    async def list_batches(request: Request) -> Response:
        limit_text = request.query_params.get("limit", "20")
        try:
            limit = int(limit_text)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            raise ApiError(
                400,
                error_body(
                    "Invalid 'limit': must be from 1 to 100.", param="limit", code="invalid_value"
                ),
            )
        return JSONResponse(state.list_batches(request.query_params.get("after"), limit))

    async def cancel_batch(request: Request) -> Response:
        return JSONResponse(state.cancel_batch(request.path_params["batch_id"]).to_json())

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc.status, exc.body)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = f"Invalid URL ({request.method} {request.url.path})"
            return _error(404, error_body(message, code="unknown_url"))
        return _error(exc.status_code, error_body(str(exc.detail)))

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/files", upload_file, methods=["POST"]),
        Route("/v1/files", list_files, methods=["GET"]),
        Route("/v1/files/{file_id}", get_file, methods=["GET"]),
        Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
        Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
        Route("/v1/batches", create_batch, methods=["POST"]),
        Route("/v1/batches", list_batches, methods=["GET"]),
        Route("/v1/batches/{batch_id}", get_batch, methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        ApiError: api_error,
        HTTPException: http_error,
    }
    router = Starlette(routes=routes, exception_handlers=handlers)
    limited = router if rate_limits is None else RateLimited(router, rate_limits)
    return _Authenticated(limited, api_key)


class _Authenticated:
    """Answers 401 in OpenAI's shape unless the request carries an acceptable bearer key."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    given = token.strip()
        body: JSONObject | None = None
        if given is None:
            body = error_body(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="invalid_api_key",
            )
        elif self.api_key is not None and not hmac.compare_digest(
            given.encode(), self.api_key.encode()
        ):
            body = error_body("Incorrect API key provided.", code="invalid_api_key")
        if body is None:
            await self.app(scope, receive, send)
            return
        await _error(401, body)(scope, receive, send)
