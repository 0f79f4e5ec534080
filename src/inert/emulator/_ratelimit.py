"""Per-model request and token rate limits, enforced and reported as OpenAI does.

Modelled on OpenAI's rate-limit guide (platform.openai.com/docs/guides/rate-limits)
and its error-code guide:

- Limits are per model: requests per minute (RPM) and tokens per minute (TPM);
  "rate limiting can be triggered by any metric, whichever comes first".
- Each limit is a bucket that refills continuously: ``x-ratelimit-reset-*`` is
  "the time until the rate limit ... resets to its initial state" (the bucket is
  full again). The guide's example answers ``x-ratelimit-reset-requests: 1s`` for
  59 of 60 requests remaining, i.e. one request's worth refills in a second.
- The tokens a request counts against TPM are estimated before it runs: its
  prompt (from the character count, here the emulator's token count of the body,
  ``_tokens.prompt_tokens``, the one it bills) plus the most it may generate, ``max_completion_tokens``
  (or ``max_tokens``) times ``n`` — the guide: "your rate limit is calculated as
  the maximum of max_tokens and the estimated number of tokens based on the
  character count of your request"; the cookbook's parallel processor charges
  ``prompt + n * max_tokens``, which is what is charged here.
- Every answer carries ``x-ratelimit-limit-requests``, ``x-ratelimit-limit-tokens``,
  ``x-ratelimit-remaining-requests``, ``x-ratelimit-remaining-tokens`` (whole
  numbers) and ``x-ratelimit-reset-requests``, ``x-ratelimit-reset-tokens`` as Go
  durations ("1s", "6m0s", "20ms", "1m30.5s").
- Over a limit: 429, ``code: rate_limit_exceeded``, ``type: requests`` or
  ``tokens``, with OpenAI's message ("Rate limit reached for gpt-4o-mini in
  organization org-... on tokens per min (TPM): Limit 200000, Used 195869,
  Requested 4412. Please try again in 84ms.") and ``retry-after`` /
  ``retry-after-ms`` headers. A request larger than the whole token limit gets
  "Request too large for ..." (it can never succeed).
- "Unsuccessful requests contribute to your per-minute limit" (the guide's Error
  mitigation section): a refused request still takes one request from the bucket.

``window`` is how many seconds' worth a full bucket holds. OpenAI's limits are per
minute (60, the default), but its help centre notes that limits "can be quantized,
meaning they are enforced over shorter periods of time (e.g. 60,000 requests/minute
may be enforced as 1,000 requests/second)": a shorter window keeps the same rate
(the limit per minute, refilled continuously) with a smaller burst. The headers
always state the limit per minute; ``remaining`` and ``reset`` describe the bucket
as it is, so a client that derives the bucket's size as ``remaining + rate * reset``
sees the window too.
"""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inert._json import JSONObject

from ._errors import error_body
from ._tokens import prompt_tokens

RateLimit = float | Mapping[str, float] | None
"""A limit for every model (a number), per model (a mapping), or none."""

ORGANIZATION: Final = "org-emulator"


def go_duration(seconds: float) -> str:
    """``seconds`` as Go prints a duration, as OpenAI's reset headers do ("6m0s", "20ms").

    Rounded to the millisecond; under a second it is in ms ("20ms", "1.5ms" never
    occurs after rounding), otherwise hours, minutes and seconds with the seconds'
    fraction trimmed ("1h2m3.5s", "6m0s", "1s").
    """
    millis = max(0, round(seconds * 1000))
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, fraction = divmod(rest, 1000)
    text = f"{whole}.{fraction:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def limit_tokens(endpoint: str, body: Mapping[str, Any]) -> int:
    """Tokens a request counts against TPM: its prompt plus ``n`` times its output limit."""
    most = body.get("max_completion_tokens")
    if not isinstance(most, int) or isinstance(most, bool):
        most = body.get("max_tokens")
    output = most if isinstance(most, int) and not isinstance(most, bool) and most > 0 else 0
    n = body.get("n")
    choices = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
    return prompt_tokens(endpoint, body) + output * choices


class _Bucket:
    """One limit of one model: ``per_minute`` refilled continuously, ``window`` seconds full."""

    __slots__ = ("capacity", "level", "per_minute", "rate", "updated")

    def __init__(self, per_minute: float, window: float, now: float) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute * window / 60.0)
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + self.rate * (now - self.updated))
        self.updated = now

    def retune(self, per_minute: float, window: float, now: float) -> None:
        """A new limit: the bucket keeps what it holds, up to its new size."""
        self.refill(now)
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute * window / 60.0)
        self.level = min(self.level, self.capacity)

    def wait_for(self, amount: float) -> float:
        """Seconds until the bucket holds ``amount``."""
        return max(0.0, (amount - self.level) / self.rate)

    def headers(self, kind: str) -> dict[str, str]:
        return {
            f"x-ratelimit-limit-{kind}": str(round(self.per_minute)),
            f"x-ratelimit-remaining-{kind}": str(max(0, math.floor(self.level))),
            f"x-ratelimit-reset-{kind}": go_duration((self.capacity - self.level) / self.rate),
        }


@attrs.frozen
class Admission:
    """The limiter's verdict on one request: headers for the answer, or a 429 to send."""

    headers: dict[str, str]
    rejection: JSONObject | None = None
    """The 429 body when refused; None when admitted."""


@attrs.frozen
class Event:
    """One request the limiter saw: when, for which model, what it counted, the verdict."""

    at: float
    model: str
    tokens: int
    admitted: bool


def _per_model(name: str, value: RateLimit) -> tuple[float | None, dict[str, float]]:
    """Split a limit into (the limit for every model, the per-model limits), checked."""
    if value is None:
        return None, {}
    if isinstance(value, Mapping):
        limits = {str(model): _check(name, v) for model, v in value.items()}
        return limits.pop("*", None), limits
    return _check(name, value), {}


def _check(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number of {name.upper()}, not {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, not {value!r}")
    return float(value)


class RateLimits:
    """Per-model RPM and TPM buckets; thread-safe (the server and tests share it).

    Args:
        rpm: requests per minute for every model (a number) or per model (a mapping;
            the key ``"*"`` gives the limit of models not named); None for none.
        tpm: tokens per minute, likewise.
        window: seconds' worth a full bucket holds (60, as OpenAI; smaller for a
            quantized limit with a smaller burst).
        clock: monotonic seconds (tests may pass their own).
    """

    def __init__(
        self,
        *,
        rpm: RateLimit = None,
        tpm: RateLimit = None,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._events: list[Event] = []
        self._rpm: tuple[float | None, dict[str, float]] = (None, {})
        self._tpm: tuple[float | None, dict[str, float]] = (None, {})
        self._window = 60.0
        self.set(rpm=rpm, tpm=tpm, window=window)

    def set(
        self, *, rpm: RateLimit = None, tpm: RateLimit = None, window: float | None = None
    ) -> None:
        """Replace the limits (requests arriving afterwards see them; buckets keep their level)."""
        if window is not None and not (math.isfinite(window) and window > 0):
            raise ValueError(
                f"the rate window must be a positive number of seconds, not {window!r}"
            )
        rpm_limits = _per_model("rpm", rpm)
        tpm_limits = _per_model("tpm", tpm)
        with self._lock:
            self._rpm, self._tpm = rpm_limits, tpm_limits
            if window is not None:
                self._window = float(window)
            now = self._clock()
            for (model, kind), bucket in list(self._buckets.items()):
                limit = self._limit(model, kind)
                if limit is None:
                    del self._buckets[(model, kind)]
                else:
                    bucket.retune(limit, self._window, now)

    @staticmethod
    def count_tokens(endpoint: str, body: Mapping[str, Any]) -> int:
        """Tokens a request to ``endpoint`` counts against TPM (see the module's notes)."""
        return limit_tokens(endpoint, body)

    @property
    def enabled(self) -> bool:
        """True when any limit is set."""
        return any(limits[0] is not None or limits[1] for limits in (self._rpm, self._tpm))

    def reset(self) -> None:
        """Fill every bucket and forget the events."""
        with self._lock:
            self._buckets.clear()
            self._events.clear()

    def events(self) -> list[Event]:
        """Every request seen since the last reset, in arrival order."""
        with self._lock:
            return list(self._events)

    def _limit(self, model: str, kind: str) -> float | None:
        default, named = self._rpm if kind == "requests" else self._tpm
        return named.get(model, default)

    def _bucket(self, model: str, kind: str, now: float) -> _Bucket | None:
        bucket = self._buckets.get((model, kind))
        if bucket is None:
            limit = self._limit(model, kind)
            if limit is None:
                return None
            bucket = self._buckets[(model, kind)] = _Bucket(limit, self._window, now)
        else:
            bucket.refill(now)
        return bucket

    def admit(self, endpoint: str, body: Mapping[str, Any]) -> Admission | None:
        """Count one arriving request; None when its model has no limits."""
        model = body.get("model")
        if not isinstance(model, str) or not self.enabled:
            return None
        tokens = limit_tokens(endpoint, body)
        with self._lock:
            now = self._clock()
            requests = self._bucket(model, "requests", now)
            token_bucket = self._bucket(model, "tokens", now)
            if requests is None and token_bucket is None:
                return None
            rejection: JSONObject | None = None
            wait = 0.0
            if token_bucket is not None and tokens > token_bucket.capacity:
                rejection = error_body(
                    f"Request too large for {model} in organization {ORGANIZATION} on tokens "
                    f"per min (TPM): Limit {round(token_bucket.per_minute)}, Requested {tokens}. "
                    "The input or output tokens must be reduced in order to run successfully.",
                    type="tokens",
                    code="rate_limit_exceeded",
                )
            elif requests is not None and requests.level < 1.0:
                wait = requests.wait_for(1.0)
                rejection = _reached(model, "requests", "RPM", requests, 1, wait)
            elif token_bucket is not None and token_bucket.level < tokens:
                wait = token_bucket.wait_for(tokens)
                rejection = _reached(model, "tokens", "TPM", token_bucket, tokens, wait)
            if rejection is None:
                if requests is not None:
                    requests.level -= 1.0
                if token_bucket is not None:
                    token_bucket.level -= tokens
            elif requests is not None:  # a refused request still counts as one
                requests.level = max(0.0, requests.level - 1.0)
            headers: dict[str, str] = {}
            if requests is not None:
                headers.update(requests.headers("requests"))
            if token_bucket is not None:
                headers.update(token_bucket.headers("tokens"))
            if rejection is not None:
                wait = max(wait, 0.001)
                headers["retry-after"] = str(math.ceil(wait))
                headers["retry-after-ms"] = str(math.ceil(wait * 1000))
            self._events.append(Event(now, model, tokens, rejection is None))
        return Admission(headers, rejection)


def _reached(
    model: str, kind: str, short: str, bucket: _Bucket, requested: int, wait: float
) -> JSONObject:
    used = max(0, round(bucket.capacity - bucket.level))
    unit = "requests" if kind == "requests" else "tokens"
    return error_body(
        f"Rate limit reached for {model} in organization {ORGANIZATION} on {unit} per min "
        f"({short}): Limit {round(bucket.per_minute)}, Used {used}, Requested {requested}. "
        f"Please try again in {go_duration(wait)}. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
        type=kind,
        code="rate_limit_exceeded",
    )


MODEL_PATHS: Final = frozenset(
    {"/v1/chat/completions", "/v1/embeddings", "/v1/responses", "/v1/completions"}
)
"""The routes whose requests name a model and count against its limits."""


class RateLimited:
    """ASGI middleware: counts model requests against ``limits`` before the app sees them.

    A refused request is answered 429 here (it never reaches the app's latency or
    faults, as OpenAI refuses at once); an admitted one goes on, and its answer,
    whatever it is, carries the ``x-ratelimit-*`` headers.
    """

    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in MODEL_PATHS
            or not self.limits.enabled
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        admission = self.limits.admit(scope["path"], body) if isinstance(body, dict) else None
        if admission is not None and admission.rejection is not None:
            refusal = JSONResponse(admission.rejection, status_code=429, headers=admission.headers)
            await refusal(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        if admission is None:
            await self.app(scope, replay, send)
            return
        extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in admission.headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, replay, send_with_headers)


def _limit_spec(text: str) -> tuple[str, float]:
    """``N`` (every model) or ``MODEL=N`` from the command line."""
    model, sep, number = text.rpartition("=")
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not N or MODEL=N") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: the limit must be a positive number")
    if sep and not model:
        raise argparse.ArgumentTypeError(f"{text!r}: the model name is empty")
    return (model if sep else "*"), value


class _LimitAction(argparse.Action):
    """Collects repeated ``--rpm``/``--tpm`` into one ``RateLimit`` value."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        assert isinstance(values, tuple)
        model, value = values
        current = getattr(namespace, self.dest, None)
        limits: dict[str, float] = {}
        if isinstance(current, dict):
            limits.update(current)
        elif isinstance(current, float):
            limits["*"] = current
        limits[str(model)] = float(value)
        setattr(namespace, self.dest, limits["*"] if list(limits) == ["*"] else limits)


def _window(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def add_rate_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """``--rpm``, ``--tpm`` and ``--rate-window`` for the emulator's command line."""
    parser.add_argument(
        "--rpm",
        type=_limit_spec,
        action=_LimitAction,
        default=None,
        metavar="[MODEL=]N",
        help="requests per minute per model (N for every model, MODEL=N for one); repeatable",
    )
    parser.add_argument(
        "--tpm",
        type=_limit_spec,
        action=_LimitAction,
        default=None,
        metavar="[MODEL=]N",
        help="tokens per minute per model, likewise (prompt estimate + max_tokens)",
    )
    parser.add_argument(
        "--rate-window",
        type=_window,
        default=60.0,
        metavar="SECONDS",
        help="seconds' worth a full rate-limit bucket holds (default 60, as OpenAI)",
    )
