"""An HTTP transport for tests that loses answers on the wire, below the SDK.

The SDK's retries and everything inert does on top run unchanged: the request
reaches the emulator (and takes effect there), then its answer is dropped, replaced
by a 5xx or an HTML page, or the process freezes right after it arrived. This is how
a lost answer looks to a client of the real service.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import attrs
import httpx2
import openai

Check = Callable[[httpx2.Response], bool]


@attrs.define
class Rule:
    """Lose the answers of the next ``times`` requests matching ``method`` and ``path``."""

    method: str
    path: re.Pattern[str]
    how: str
    times: int
    when: Check | None = None
    marker: Path | None = None
    then: Callable[[httpx2.Response], object] | None = None
    error: BaseException | None = None
    rewrite: Callable[[bytes], bytes] | None = None
    hits: int = 0


class _BrokenBody(httpx2.AsyncByteStream):
    """A response body that gives its first part, then fails as a dropped connection does."""

    def __init__(self, part: bytes, request: httpx2.Request) -> None:
        self.part = part
        self.request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.part
        raise httpx2.RemoteProtocolError("the connection dropped mid-body", request=self.request)


class LossyTransport(httpx2.AsyncBaseTransport):
    """Forwards every request to the server; loses the answers its rules name."""

    def __init__(self) -> None:
        self.inner = httpx2.AsyncHTTPTransport()
        self.rules: list[Rule] = []

    def lose(self, method: str, path: str, *, how: str = "disconnect", times: int = 1) -> Rule:
        """After the server answered, drop the connection (``"disconnect"``), answer
        ``"502"`` or an HTML ``"html"`` page instead, or break the body off halfway
        (``"broken_body"``: the status and headers arrive, then the connection drops),
        ``times`` times in a row."""
        rule = Rule(method, re.compile(path), how, times)
        self.rules.append(rule)
        return rule

    def freeze_after(self, method: str, path: str, marker: Path, when: Check | None = None) -> Rule:
        """After the first answer that satisfies ``when``, write ``marker`` and block the
        whole process (event loop included) until it is killed."""
        rule = Rule(method, re.compile(path), "freeze", 1, when=when, marker=marker)
        self.rules.append(rule)
        return rule

    def rewrite(
        self, method: str, path: str, change: Callable[[bytes], bytes], *, times: int = 1
    ) -> Rule:
        """Replace the body of the next ``times`` matching answers by ``change(body)``."""
        rule = Rule(method, re.compile(path), "rewrite", times, rewrite=change)
        self.rules.append(rule)
        return rule

    def crash(self, method: str, path: str, error: BaseException, *, before: bool = False) -> Rule:
        """Raise ``error`` (a stand-in for the process dying) at the next matching request:
        after its answer arrived, or ``before`` it is sent at all."""
        rule = Rule(method, re.compile(path), "crash_before" if before else "crash", 1, error=error)
        self.rules.append(rule)
        return rule

    def on_answer(
        self,
        method: str,
        path: str,
        then: Callable[[httpx2.Response], object],
        *,
        times: int = 1,
        when: Check | None = None,
    ) -> Rule:
        """Call ``then(answer)`` as each of the next ``times`` matching answers that satisfy
        ``when`` arrives (before the SDK sees it); the answer itself goes through unchanged."""
        rule = Rule(method, re.compile(path), "call", times, when=when, then=then)
        self.rules.append(rule)
        return rule

    def _matching(self, request: httpx2.Request, how: str) -> Rule | None:
        for rule in self.rules:
            if (
                rule.how == how
                and rule.hits < rule.times
                and request.method == rule.method
                and rule.path.fullmatch(request.url.path)
            ):
                rule.hits += 1
                return rule
        return None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        early = self._matching(request, "crash_before")
        if early is not None:
            assert early.error is not None
            raise early.error
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        answer = httpx2.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )
        for rule in self.rules:
            if rule.how == "crash_before":
                continue
            if rule.hits >= rule.times or request.method != rule.method:
                continue
            if not rule.path.fullmatch(request.url.path):
                continue
            if rule.when is not None and not rule.when(answer):
                continue
            rule.hits += 1
            if rule.how == "call":
                assert rule.then is not None
                rule.then(answer)
                continue
            if rule.how == "freeze":
                assert rule.marker is not None
                rule.marker.write_text(request.url.path)
                time.sleep(3600)  # noqa: ASYNC251 - blocking on purpose: nothing else may run
            if rule.how == "rewrite":
                assert rule.rewrite is not None
                answer = httpx2.Response(
                    answer.status_code,
                    headers={"content-type": answer.headers.get("content-type", "")},
                    content=rule.rewrite(answer.content),
                    request=request,
                )
                continue
            if rule.how == "crash":
                assert rule.error is not None
                raise rule.error
            if rule.how == "disconnect":
                raise httpx2.RemoteProtocolError("the answer was lost", request=request)
            if rule.how == "502":
                return httpx2.Response(502, content=b"Bad Gateway", request=request)
            if rule.how == "broken_body":
                return httpx2.Response(
                    answer.status_code,
                    headers={"content-type": answer.headers.get("content-type", "")},
                    stream=_BrokenBody(answer.content[: len(answer.content) // 2], request),
                    request=request,
                )
            if rule.how == "html":
                return httpx2.Response(
                    200,
                    headers={"content-type": "text/html"},
                    content=b"<html><body>Service Unavailable</body></html>",
                    request=request,
                )
            raise AssertionError(f"unknown way to lose an answer: {rule.how!r}")
        return answer

    async def aclose(self) -> None:
        await self.inner.aclose()


def lossy_client(base_url: str, transport: LossyTransport) -> openai.AsyncOpenAI:
    """An SDK client with its default retries whose answers ``transport`` may lose."""
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key="sk-test-SECRET-never-stored",
        http_client=httpx2.AsyncClient(transport=transport),
    )
