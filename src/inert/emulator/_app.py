"""The ASGI application: OpenAI's routes over ``State``, with auth and faults.

Every route is named as ``Emulator.inject`` names it (``"files.create"``, …) and
passes through ``_guarded``, where queued and drawn attempt faults apply (429,
5xx, dropped connections, non-JSON bodies) before the route runs. Every model call
(immediate, on any model endpoint) then passes through ``model_call``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal

from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inert._json import JSONObject

from ._anthropic import PREFIX as ANTHROPIC_PREFIX
from ._anthropic_app import build_anthropic_app
from ._calls import ENDPOINTS
from ._errors import ApiError, bad_request, error_body
from ._faults import MODEL_ROUTES, Injection
from ._files import MAX_LIST_LIMIT, parse_limit
from ._ratelimit import RateLimited, RateLimits
from ._state import State
from ._validate import check_expiry

FILE_PURPOSES: Final = (
    "assistants", "batch", "fine-tune", "vision", "user_data", "evals",
)  # fmt: skip
"""The purposes ``CreateFileRequest`` accepts (openai/openai-openapi)."""

MODEL_PATHS: Final = {
    "chat.completions": "/v1/chat/completions",
    "embeddings": "/v1/embeddings",
    "responses": "/v1/responses",
    "completions": "/v1/completions",
    "moderations": "/v1/moderations",
}

BAD_GATEWAY_PAGE: Final = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)
"""What a proxy in front of the API serves instead of JSON (the ``not_json`` fault)."""


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


def _retry_headers(retry_after: float | None) -> dict[str, str] | None:
    if retry_after is None:
        return None
    return {"retry-after": f"{retry_after:.3f}", "retry-after-ms": str(round(retry_after * 1000))}


_SERVER_ERRORS: Final = {
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The engine is currently overloaded, please try again later.",
}


def fault_response(fault: Injection) -> Response:
    """The answer to an attempt that suffers ``fault`` (nothing is done or billed)."""
    if fault.kind == "rate_limit":
        return _error(
            429,
            error_body(
                "Rate limit reached for requests (emulated). Please try again shortly.",
                type="requests",
                code="rate_limit_exceeded",
            ),
            headers=_retry_headers(fault.retry_after),
        )
    if fault.kind == "not_json":
        return Response(BAD_GATEWAY_PAGE, status_code=fault.status or 200, media_type="text/html")
    if fault.kind == "disconnect":
        return _Dropped()
    status = fault.status or 500
    message = _SERVER_ERRORS.get(status, "The server had an error while processing your request.")
    return _error(
        status,
        error_body(message, type="server_error", code=None),
        headers=_retry_headers(fault.retry_after),
    )


GENERIC_FAULTS: Final = ("rate_limit", "server_error", "disconnect", "not_json")


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly.)"
        ) from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def _form_expiry(form: FormData) -> object:
    """``expires_after`` as the SDK sends it in a multipart form (bracketed fields)."""
    anchor = form.get("expires_after[anchor]")
    seconds = form.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    value: object = seconds
    if isinstance(seconds, str):
        try:
            value = int(seconds)
        except ValueError:
            value = seconds
    return {"anchor": anchor, "seconds": value}


Handler = Callable[[Request, Injection | None], Awaitable[Response]]


def build_app(
    state: State,
    *,
    api_key: str | None,
    access_log: bool = False,
    rate_limits: RateLimits | None = None,
) -> ASGIApp:
    """The emulator's ASGI app (access log and quiet disconnects, auth, rate limits, routes)."""

    def guarded(route: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if route in MODEL_ROUTES and state.latency_ms > 0:
                await asyncio.sleep(state.latency_ms / 1000)
            fault = state.attempt_fault(route)
            if fault is not None and fault.kind in GENERIC_FAULTS:
                await request.body()  # take what the client sends before answering
                return fault_response(fault)
            return await handler(request, fault)

        return endpoint

    def model_route(route: str) -> Handler:
        endpoint = MODEL_PATHS[route]

        async def model_call(request: Request, fault: Injection | None) -> Response:
            body = await _json_body(request)
            result = state.answer(endpoint, body, batch=False)
            state.bill_call(endpoint, body, result)
            return JSONResponse(result.body, status_code=result.status)

        return model_call

    async def upload_file(request: Request, fault: Injection | None) -> Response:
        async with request.form() as form:
            upload = form.get("file")
            purpose = form.get("purpose")
            if not isinstance(upload, UploadFile):
                raise bad_request(
                    "Missing required parameter: 'file'.",
                    param="file",
                    code="missing_required_parameter",
                )
            if not isinstance(purpose, str) or purpose not in FILE_PURPOSES:
                raise bad_request(
                    f"Invalid 'purpose': {purpose!r}; choose from {', '.join(FILE_PURPOSES)}.",
                    param="purpose",
                    code="invalid_value",
                )
            ttl = check_expiry(_form_expiry(form), "expires_after")
            content = await upload.read()
            filename = upload.filename or "upload"
        return JSONResponse(state.add_file(filename, purpose, content, ttl=ttl).to_json())

    async def list_files(request: Request, fault: Injection | None) -> Response:
        query = request.query_params
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise bad_request(
                f"Invalid 'order': {order!r}; choose 'asc' or 'desc'.",
                param="order",
                code="invalid_value",
            )
        sort: Literal["asc", "desc"] = "asc" if order == "asc" else "desc"
        limit = parse_limit(query.get("limit"), default=MAX_LIST_LIMIT, maximum=MAX_LIST_LIMIT)
        page = state.list_files(
            purpose=query.get("purpose"), after=query.get("after"), limit=limit, order=sort
        )
        return JSONResponse(page)

    async def get_file(request: Request, fault: Injection | None) -> Response:
        return JSONResponse(state.get_file(request.path_params["file_id"]).to_json())

    async def file_content(request: Request, fault: Injection | None) -> Response:
        stored = state.get_file(request.path_params["file_id"])
        content = stored.content
        cut = fault is not None and fault.kind == "truncated"
        if not cut and stored.purpose == "batch_output":
            cut = state.chance(state.faults.output_truncated)
        if cut and content:
            # A whole HTTP answer whose body stops short (a proxy or storage fault):
            # the client sees no transport error, only fewer bytes than the file has.
            content = content[: max(1, len(content) // 2 - 1)]
        return Response(content, media_type="application/octet-stream")

    async def delete_file(request: Request, fault: Injection | None) -> Response:
        file_id: str = request.path_params["file_id"]
        state.delete_file(file_id)
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    async def create_batch(request: Request, fault: Injection | None) -> Response:
        batch = state.create_batch(await _json_body(request))
        lost: Injection | None = (
            fault if fault is not None and fault.kind == "create_lost" else None
        )
        if lost is None and state.chance(state.faults.create_lost):
            with state.lock:
                lost = Injection("create_lost", state.rng.choice((None, 500, 502)))
        if lost is not None:
            # The batch exists and will run and bill; only the answer is lost.
            if lost.status is None:
                return _Dropped()
            return fault_response(Injection("server_error", lost.status))
        return JSONResponse(batch.to_json())

    async def get_batch(request: Request, fault: Injection | None) -> Response:
        return JSONResponse(state.get_batch(request.path_params["batch_id"]).to_json())

    async def list_batches(request: Request, fault: Injection | None) -> Response:
        limit = parse_limit(request.query_params.get("limit"), default=20, maximum=100)
        return JSONResponse(state.list_batches(request.query_params.get("after"), limit))

    async def cancel_batch(request: Request, fault: Injection | None) -> Response:
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

    def route(path: str, name: str, handler: Handler, method: str) -> Route:
        return Route(path, guarded(name, handler), methods=[method], name=name)

    routes = [
        route(path, name, model_route(name), "POST")
        for name, path in MODEL_PATHS.items()
        if path in ENDPOINTS
    ]
    routes += [
        route("/v1/files", "files.create", upload_file, "POST"),
        route("/v1/files", "files.list", list_files, "GET"),
        route("/v1/files/{file_id}", "files.retrieve", get_file, "GET"),
        route("/v1/files/{file_id}", "files.delete", delete_file, "DELETE"),
        route("/v1/files/{file_id}/content", "files.content", file_content, "GET"),
        route("/v1/batches", "batches.create", create_batch, "POST"),
        route("/v1/batches", "batches.list", list_batches, "GET"),
        route("/v1/batches/{batch_id}", "batches.retrieve", get_batch, "GET"),
        route("/v1/batches/{batch_id}/cancel", "batches.cancel", cancel_batch, "POST"),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        ApiError: api_error,
        HTTPException: http_error,
    }
    anthropic = build_anthropic_app(
        state,
        state.message_batches,
        api_key=api_key,
        dropped=_Dropped,
        bad_gateway_page=BAD_GATEWAY_PAGE,
    )
    mounted: list[BaseRoute] = [*routes, Mount(ANTHROPIC_PREFIX, app=anthropic)]
    router = Starlette(routes=mounted, exception_handlers=handlers)  # Anthropic: own auth
    limited = router if rate_limits is None else RateLimited(router, rate_limits)
    return _Served(_Authenticated(limited, api_key), access_log=access_log)


ACCESS_LOG: Final = logging.getLogger("inert.emulator.access")
"""One INFO line per request when the access log is on: client, method, path, status, time."""


class _Served:
    """The outermost layer: an access log line per request, and quiet client disconnects.

    A client that goes away mid-request (a timeout, a cancelled task) makes the
    body read raise ``ClientDisconnect``; that is the client's business, so it
    ends the request without a traceback (and without an answer: nobody listens).
    Only the method, path, status and time are logged, never headers or bodies.
    """

    def __init__(self, app: ASGIApp, *, access_log: bool) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: list[int] = []

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        outcome = ""
        try:
            await self.app(scope, receive, recording)
        except ClientDisconnect:
            outcome = "client disconnected"
        except DropConnection:
            outcome = "dropped (injected)"
            raise
        finally:
            if self.access_log:
                self._log(scope, status, outcome, time.perf_counter() - started)

    @staticmethod
    def _log(scope: Scope, status: list[int], outcome: str, seconds: float) -> None:
        client = scope.get("client")
        who = f"{client[0]}:{client[1]}" if client else "-"
        path = scope.get("path", "")
        query = scope.get("query_string", b"")
        if query:
            path += "?" + query.decode("latin-1")
        # After a disconnect nobody got an answer (Starlette's attempt at a 500 went nowhere).
        code = str(status[0]) if status and outcome != "client disconnected" else "-"
        suffix = f" {outcome}" if outcome else ""
        ACCESS_LOG.info(
            '%s "%s %s" %s %.1f ms%s',
            who,
            scope.get("method", ""),
            path,
            code,
            seconds * 1000,
            suffix,
        )


class _Authenticated:
    """Answers 401 in OpenAI's shape unless the request carries an acceptable bearer key."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(f"{ANTHROPIC_PREFIX}/"):
            # Anthropic's routes check their own key (x-api-key), in Anthropic's shape.
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
