"""One provider's client inside the immediate runner: where ops go and how errors read.

The runner's retry loop, pacing and error translation are the same for every
provider; what differs is behind this seam: which SDK client posts the body, the
path an endpoint has under the client's base URL, how the provider's error body
names its message and code, and which SDK exceptions mean "an HTTP error status"
or "no answer". Each transport turns its SDK's exceptions into the two neutral ones
below, so the runner never looks at an SDK's exception classes.
"""

from __future__ import annotations

from typing import Final

import anthropic
import httpx2
import openai

from inert._json import JSON
from inert._providers import Provider, clients_of


class StatusAnswer(Exception):
    """The server answered with an HTTP error status (the SDK's ``APIStatusError``)."""

    def __init__(self, status: int, response: httpx2.Response, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.response = response
        self.message = message


class NoAnswer(Exception):
    """No answer arrived (the SDK's ``APIConnectionError``); the cause is chained."""

    def __init__(self, request: httpx2.Request, cause: BaseException | None) -> None:
        super().__init__(str(cause))
        self.request = request
        self.cause = cause


class SdkFailure(Exception):
    """Any other error the SDK raised (a bug or a setting), named as the SDK names it."""


SDK_ERRORS: Final = (openai.OpenAIError, anthropic.AnthropicError)
"""The SDKs' base exceptions: wrappers to look through for a failure's root cause."""


class Transport:
    """The posts of one provider's client, with the SDK's own retries off (ours decide)."""

    provider: Provider
    base_url: str

    async def post(self, path: str, body: bytes, timeouts: httpx2.Timeout) -> httpx2.Response:
        """Post ``body`` (JSON bytes) to ``path``; raise StatusAnswer, NoAnswer or SdkFailure."""
        raise NotImplementedError

    def path(self, endpoint: str) -> str:
        """The path of an op's endpoint under the client's base URL."""
        raise NotImplementedError

    def error_details(self, body: JSON) -> tuple[str | None, str | None]:
        """``(message, code)`` from the provider's error body, where present."""
        raise NotImplementedError

    def hint(self, status: int) -> str:
        """Advice to add to an HTTP error's message (a likely wrong base URL), or ``""``."""
        return ""


class OpenAITransport(Transport):
    """An ``openai.AsyncOpenAI``: base URLs end in ``/v1``; errors ``{"error": {message, code}}``."""

    provider: Provider = "openai"

    def __init__(self, client: openai.AsyncOpenAI, base_url: str) -> None:
        self._client = client.with_options(max_retries=0)
        self.base_url = base_url

    async def post(self, path: str, body: bytes, timeouts: httpx2.Timeout) -> httpx2.Response:
        options: openai.RequestOptions = {
            "max_retries": 0,
            "timeout": timeouts,
            "security": {"bearer_auth": True},
        }
        try:
            return await self._client.post(
                path, cast_to=httpx2.Response, content=body, options=options
            )
        except openai.APIStatusError as exc:
            raise StatusAnswer(exc.status_code, exc.response, exc.message) from None
        except openai.APIConnectionError as exc:  # APITimeoutError is one too
            raise NoAnswer(exc.request, exc.__cause__) from exc
        except openai.OpenAIError as exc:
            raise SdkFailure(f"{type(exc).__name__}: {exc}") from None

    def path(self, endpoint: str) -> str:
        return endpoint[3:] if endpoint.startswith("/v1/") else endpoint

    def error_details(self, body: JSON) -> tuple[str | None, str | None]:
        details = body.get("error") if isinstance(body, dict) else None
        message = details.get("message") if isinstance(details, dict) else None
        code = details.get("code") if isinstance(details, dict) else None
        return (
            message if isinstance(message, str) else None,
            code if isinstance(code, str) else None,
        )

    def hint(self, status: int) -> str:
        if status == 404 and not self.base_url.endswith("/v1"):
            return (
                f" (the base URL {self.base_url} does not end in /v1, where OpenAI-compatible "
                f"servers serve the API; try base_url='{self.base_url}/v1')"
            )
        return ""


class AnthropicTransport(Transport):
    """An ``anthropic.AsyncAnthropic``: paths keep ``/v1``; errors ``{"error": {type, message}}``."""

    provider: Provider = "anthropic"

    def __init__(self, client: anthropic.AsyncAnthropic, base_url: str) -> None:
        self._client = client.with_options(max_retries=0)
        self.base_url = base_url

    async def post(self, path: str, body: bytes, timeouts: httpx2.Timeout) -> httpx2.Response:
        options: anthropic.RequestOptions = {"max_retries": 0, "timeout": timeouts}
        try:
            return await self._client.post(
                path, cast_to=httpx2.Response, content=body, options=options
            )
        except anthropic.APIStatusError as exc:
            raise StatusAnswer(exc.status_code, exc.response, exc.message) from None
        except anthropic.APIConnectionError as exc:
            raise NoAnswer(exc.request, exc.__cause__) from exc
        except anthropic.AnthropicError as exc:
            raise SdkFailure(f"{type(exc).__name__}: {exc}") from None

    def path(self, endpoint: str) -> str:
        return endpoint

    def error_details(self, body: JSON) -> tuple[str | None, str | None]:
        details = body.get("error") if isinstance(body, dict) else None
        message = details.get("message") if isinstance(details, dict) else None
        kind = details.get("type") if isinstance(details, dict) else None
        return (
            message if isinstance(message, str) else None,
            kind if isinstance(kind, str) else None,
        )

    def hint(self, status: int) -> str:
        if status == 404 and self.base_url.endswith("/v1"):
            return (
                f" (the base URL {self.base_url} ends in /v1, but Anthropic's paths carry it "
                f"themselves; try base_url='{self.base_url.removesuffix('/v1')}')"
            )
        return ""


def public_url(url: str) -> str:
    """``url`` without credentials, query or trailing slash: safe for messages and logs."""
    parsed = httpx2.URL(url)
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}".rstrip("/")


def transports_of(
    runner: str,
    client: object,
    openai_client: object,
    anthropic_client: object,
) -> dict[Provider, Transport]:
    """The transports of a runner's clients: the positional OpenAI one, or those by name.

    Raises:
        TypeError: as :func:`clients_of`.
    """
    chosen, claude = clients_of(runner, client, openai_client, anthropic_client)
    transports: dict[Provider, Transport] = {}
    if chosen is not None:
        transports["openai"] = OpenAITransport(chosen, public_url(str(chosen.base_url)))
    if claude is not None:
        transports["anthropic"] = AnthropicTransport(claude, public_url(str(claude.base_url)))
    return transports


def url_of(transport: Transport, path: str) -> str:
    """The public URL of ``path`` under the transport's base URL (for messages)."""
    return f"{transport.base_url}/{path.lstrip('/')}"
