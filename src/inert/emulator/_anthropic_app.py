"""The routes of Anthropic's API, mounted at ``/anthropic`` in the emulator's app.

``anthropic.AsyncAnthropic(base_url=emu.anthropic_base_url, api_key=...)`` talks to
them as to api.anthropic.com: ``POST /v1/messages`` and the Message Batches routes
(create, retrieve, list, cancel, results, delete). Requests carry the key in
``x-api-key`` (or as a bearer token, as the ``anthropic`` SDK 2.x sends it) and an
``anthropic-version`` header, as the API requires; errors
have Anthropic's shape. Every route is named as ``Emulator.inject`` names it
(``"anthropic.messages"``, ``"anthropic.batches.create"``, ...) and draws the same
attempt faults as OpenAI's routes (429 ``rate_limit_error`` with ``retry-after``,
5xx ``api_error`` or 529 ``overloaded_error``, dropped connections, an HTML page);
``create_lost`` makes the batch and loses the answer, ``truncated`` (and the
``output_truncated`` rate) cuts a results download short.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inert._json import op_key

from ._anthropic import MESSAGES_PATH, anthropic_error, invalid, message_object, validate_message
from ._anthropic_batches import ClientError, MessageBatches, page_json
from ._faults import Injection

VERSION_HEADER: Final = "anthropic-version"

Handler = Callable[[Request, Injection | None], Awaitable[Response]]


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(anthropic_error(kind, message), status_code=status, headers=headers)


def _fault_response(fault: Injection, dropped: Callable[[], Response], page: str) -> Response:
    """Anthropic's answer to an attempt that suffers ``fault`` (nothing done or billed)."""
    if fault.kind == "rate_limit":
        headers = None
        if fault.retry_after is not None:
            headers = {"retry-after": f"{fault.retry_after:.3f}"}
        return _error(
            429, "rate_limit_error", "Number of requests has exceeded your rate limit.", headers
        )
    if fault.kind == "not_json":
        return Response(page, status_code=fault.status or 200, media_type="text/html")
    if fault.kind == "disconnect":
        return dropped()
    status = fault.status or 500
    if status == 529:
        return _error(529, "overloaded_error", "Overloaded")
    return _error(status, "api_error", "Internal server error")


def _key_of(request: Request) -> str | None:
    """The key a request carries: ``x-api-key``, or a bearer token (the SDK's 2.x form)."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def _json_body(request: Request) -> tuple[dict[str, Any], int]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ClientError(400, invalid("The request body is not valid JSON.")) from None
    if not isinstance(body, dict):
        raise ClientError(400, invalid("The request body must be a JSON object."))
    return body, len(raw)


def build_anthropic_app(
    host: Any,
    batches: MessageBatches,
    *,
    api_key: str | None,
    dropped: Callable[[], Response],
    bad_gateway_page: str,
) -> Starlette:
    """Anthropic's routes over the emulator's state (``host``) and its Message Batches."""

    def base_url(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"

    def guarded(route: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            given = _key_of(request)
            if not given:
                return _error(401, "authentication_error", "x-api-key header is required")
            if api_key is not None and not hmac.compare_digest(given.encode(), api_key.encode()):
                return _error(401, "authentication_error", "invalid x-api-key")
            if not request.headers.get(VERSION_HEADER):
                return _error(400, "invalid_request_error", "anthropic-version: header is required")
            if route == "anthropic.messages" and host.latency_ms > 0:
                await asyncio.sleep(host.latency_ms / 1000)
            fault = host.attempt_fault(route)
            if fault is not None and fault.kind in (
                "rate_limit",
                "server_error",
                "disconnect",
                "not_json",
            ):
                await request.body()
                return _fault_response(fault, dropped, bad_gateway_page)
            try:
                return await handler(request, fault)
            except ClientError as error:
                return JSONResponse(error.body, status_code=error.status)

        return endpoint

    async def messages(request: Request, fault: Injection | None) -> Response:
        body, _ = await _json_body(request)
        problem = validate_message(body)
        if problem is not None:
            return JSONResponse(problem, status_code=400)
        message, input_tokens, output_tokens = message_object(body, host.faults, batch=False)
        host.ledger.record(
            op_key(MESSAGES_PATH, body),
            MESSAGES_PATH,
            batch=False,
            prompt_tokens=input_tokens,
            completion_tokens=output_tokens,
        )
        return JSONResponse(message)

    async def create(request: Request, fault: Injection | None) -> Response:
        body, size = await _json_body(request)
        batch = batches.create(body, size)
        lost = fault if fault is not None and fault.kind == "create_lost" else None
        if lost is None and host.chance(host.faults.create_lost):
            with host.lock:
                lost = Injection("create_lost", host.rng.choice((None, 500, 529)))
        if lost is not None:  # the batch exists and runs and bills; only the answer is lost
            if lost.status is None:
                return dropped()
            return _fault_response(
                Injection("server_error", lost.status), dropped, bad_gateway_page
            )
        return JSONResponse(batch.to_json(base_url(request)))

    async def retrieve(request: Request, fault: Injection | None) -> Response:
        return JSONResponse(batches.get(request.path_params["batch_id"]).to_json(base_url(request)))

    async def listing(request: Request, fault: Injection | None) -> Response:
        query = request.query_params
        text = query.get("limit", "20")
        try:
            limit = int(text)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            raise ClientError(400, invalid("limit: Input should be between 1 and 1000"))
        chosen, more = batches.page(
            limit=limit, after_id=query.get("after_id"), before_id=query.get("before_id")
        )
        return JSONResponse(page_json(chosen, more, base_url(request)))

    async def cancel(request: Request, fault: Injection | None) -> Response:
        batch = batches.cancel(request.path_params["batch_id"])
        return JSONResponse(batch.to_json(base_url(request)))

    async def results(request: Request, fault: Injection | None) -> Response:
        content = batches.results(request.path_params["batch_id"])
        cut = fault is not None and fault.kind == "truncated"
        if not cut:
            cut = host.chance(host.faults.output_truncated)
        if cut and content:
            content = content[: max(1, len(content) // 2 - 1)]
        return Response(content, media_type="application/binary")

    async def delete(request: Request, fault: Injection | None) -> Response:
        batch_id: str = request.path_params["batch_id"]
        batches.delete(batch_id)
        return JSONResponse({"id": batch_id, "type": "message_batch_deleted"})

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return _error(404, "not_found_error", f"Not found: {request.method} {request.url.path}")
        return _error(exc.status_code, "invalid_request_error", str(exc.detail))

    def route(path: str, name: str, handler: Handler, method: str) -> Route:
        return Route(path, guarded(name, handler), methods=[method], name=name)

    batch_path = "/v1/messages/batches/{batch_id}"
    return Starlette(
        routes=[
            route("/v1/messages", "anthropic.messages", messages, "POST"),
            route("/v1/messages/batches", "anthropic.batches.create", create, "POST"),
            route("/v1/messages/batches", "anthropic.batches.list", listing, "GET"),
            route(batch_path, "anthropic.batches.retrieve", retrieve, "GET"),
            route(batch_path, "anthropic.batches.delete", delete, "DELETE"),
            route(f"{batch_path}/cancel", "anthropic.batches.cancel", cancel, "POST"),
            route(f"{batch_path}/results", "anthropic.batches.results", results, "GET"),
        ],
        exception_handlers={HTTPException: not_found},
    )
