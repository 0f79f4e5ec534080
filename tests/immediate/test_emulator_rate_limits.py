"""The emulator enforces per-model RPM and TPM limits and reports them as OpenAI does.

Through the real SDK over HTTP; the limits' buckets start full and refill at the
limit per minute (see ``inert.emulator._ratelimit``).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import openai
import pytest
from openai import Omit, omit

from inert.emulator import Emulator, build_parser
from inert.emulator._ratelimit import go_duration, limit_tokens

MODEL = "gpt-4o-mini"
HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
)


@pytest.fixture(scope="module")
def limited() -> Iterator[Emulator]:
    """An emulator of its own, whose limits each test sets."""
    with Emulator(seed=3) as emulator:
        yield emulator


@pytest.fixture
def sdk(limited: Emulator) -> Iterator[openai.OpenAI]:
    """A blocking client without retries, so every 429 is seen."""
    limited.reset()
    limited.set_rate_limits()
    with openai.OpenAI(base_url=limited.base_url, api_key="k", max_retries=0) as client:
        yield client


def _ask(
    sdk: openai.OpenAI,
    model: str = MODEL,
    *,
    max_tokens: int | Omit = omit,
    max_completion_tokens: int | Omit = omit,
) -> httpx2.Headers:
    """One chat call of 107 prompt tokens (100 of text, 4 for the message, 3 for the request)."""
    response = sdk.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": "x" * 400}],
        max_tokens=max_tokens,
        max_completion_tokens=max_completion_tokens,
    )
    return response.headers


def test_every_answer_carries_the_six_headers_in_openai_formats(
    limited: Emulator, sdk: openai.OpenAI
) -> None:
    """A limited model's answer states limit, remaining and reset for requests and tokens."""
    limited.set_rate_limits(rpm=60, tpm=10_000)
    headers = _ask(sdk, max_tokens=100)
    assert ["60", "10000", "59", str(10_000 - 207)] == [headers[h] for h in HEADERS[:4]]
    # One request refills in a second; 207 tokens at 10,000 a minute in 1.242 s.
    assert ("1s", "1.242s") == (headers[HEADERS[4]], headers[HEADERS[5]])


def test_an_unlimited_model_gets_no_rate_limit_headers(
    limited: Emulator, sdk: openai.OpenAI
) -> None:
    """Limits named for one model leave the others unlimited and silent."""
    limited.set_rate_limits(rpm={"gpt-4o": 5})
    headers = _ask(sdk)
    assert not any(h in headers for h in HEADERS)


def test_over_the_request_limit_is_a_429_with_retry_after(
    limited: Emulator, sdk: openai.OpenAI
) -> None:
    """The request after the last one allowed is refused like OpenAI refuses it."""
    limited.set_rate_limits(rpm=2)
    _ask(sdk)
    _ask(sdk)
    with pytest.raises(openai.RateLimitError) as caught:
        _ask(sdk)
    error = caught.value
    assert ("rate_limit_exceeded", "requests") == (error.code, error.type)
    assert "on requests per min (RPM): Limit 2, Used 2, Requested 1." in error.message
    assert "0" == error.response.headers["x-ratelimit-remaining-requests"]
    # Two a minute: one refills in up to 30 s.
    assert 29 <= float(error.response.headers["retry-after"]) <= 30
    assert [True, True, False] == [e.admitted for e in limited.rate_limits.events()]


def test_tokens_count_the_prompt_and_n_times_the_output_limit(
    limited: Emulator, sdk: openai.OpenAI
) -> None:
    """TPM is charged the prompt estimate plus max_completion_tokens (or max_tokens) per choice."""
    limited.set_rate_limits(tpm=100_000)
    _ask(sdk, max_completion_tokens=50)
    _ask(sdk, max_tokens=20)
    _ask(sdk)
    assert [157, 127, 107] == [e.tokens for e in limited.rate_limits.events()]
    body = {"model": MODEL, "messages": [{"role": "user", "content": "abcd"}], "n": 3}
    assert 1 + 4 + 3 + 3 * 10 == limit_tokens("/v1/chat/completions", {**body, "max_tokens": 10})


def test_over_the_token_limit_is_a_429_of_type_tokens(
    limited: Emulator, sdk: openai.OpenAI
) -> None:
    """A request that does not fit what is left of TPM is refused; a smaller one still fits."""
    limited.set_rate_limits(tpm=400)
    _ask(sdk, max_tokens=150)  # 257 of 400
    with pytest.raises(openai.RateLimitError) as caught:
        _ask(sdk, max_tokens=150)
    assert "tokens" == caught.value.type
    assert "on tokens per min (TPM): Limit 400, Used 257, Requested 257." in caught.value.message
    _ask(sdk, max_tokens=10)  # 117 fit in the 143 left


def test_a_request_larger_than_the_whole_limit_is_too_large(
    limited: Emulator, sdk: openai.OpenAI
) -> None:
    """More tokens than the limit holds gets OpenAI's 'Request too large' (never retryable)."""
    limited.set_rate_limits(tpm=200)
    with pytest.raises(openai.RateLimitError) as caught:
        _ask(sdk, max_tokens=500)
    assert caught.value.message.startswith("Error code: 429 - ")
    assert "Request too large for gpt-4o-mini" in caught.value.message


def test_a_refused_request_still_counts_against_the_request_limit(
    limited: Emulator, sdk: openai.OpenAI
) -> None:
    """OpenAI: unsuccessful requests contribute to the per-minute limit."""
    limited.set_rate_limits(rpm=3, tpm=300)
    _ask(sdk, max_tokens=150)  # tokens 257 of 300; requests 1 of 3
    with pytest.raises(openai.RateLimitError):
        _ask(sdk, max_tokens=150)  # refused for tokens, yet it takes a request
    with pytest.raises(openai.RateLimitError) as caught:
        _ask(sdk, max_tokens=150)
    assert "0" == caught.value.response.headers["x-ratelimit-remaining-requests"]


def test_limits_are_per_model(limited: Emulator, sdk: openai.OpenAI) -> None:
    """Each model has its own buckets; '*' names the limit of every other model."""
    limited.set_rate_limits(rpm={"gpt-4o": 1, "*": 2})
    _ask(sdk, model="gpt-4o")
    _ask(sdk)
    _ask(sdk)
    with pytest.raises(openai.RateLimitError):
        _ask(sdk, model="gpt-4o")
    with pytest.raises(openai.RateLimitError):
        _ask(sdk)
    assert "2" == _ask(sdk, model="gpt-4.1")["x-ratelimit-limit-requests"]


def test_lowering_a_limit_mid_run_takes_effect_on_the_next_request(
    limited: Emulator, sdk: openai.OpenAI
) -> None:
    """The setter changes the limit at once; the bucket keeps at most its new size."""
    limited.set_rate_limits(rpm=600)
    assert "599" == _ask(sdk)["x-ratelimit-remaining-requests"]
    limited.set_rate_limits(rpm=60)
    headers = _ask(sdk)
    assert ("60", "59") == (
        headers["x-ratelimit-limit-requests"],
        headers["x-ratelimit-remaining-requests"],
    )


def test_a_shorter_window_keeps_the_rate_with_a_smaller_bucket(
    limited: Emulator, sdk: openai.OpenAI
) -> None:
    """rate_window=1: a 600 RPM bucket holds ten requests, and reset still reads per minute."""
    limited.set_rate_limits(rpm=600, window=1.0)
    headers = _ask(sdk)
    assert ("600", "9", "100ms") == tuple(
        headers[f"x-ratelimit-{h}-requests"] for h in ("limit", "remaining", "reset")
    )
    limited.set_rate_limits(window=60.0)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.02, "20ms"),
        (0.0004, "0s"),
        (1, "1s"),
        (17.4999, "17.5s"),
        (360, "6m0s"),
        (90.5, "1m30.5s"),
        (3723.25, "1h2m3.25s"),
    ],
)
def test_reset_durations_are_written_as_go_prints_them(seconds: float, text: str) -> None:
    """The reset headers use Go's duration format, as OpenAI's do ("6m0s", "20ms")."""
    assert text == go_duration(seconds)


def test_the_command_line_takes_limits_for_all_models_and_per_model() -> None:
    """--rpm N applies to every model, --rpm MODEL=N to one; both can be combined."""
    args = build_parser().parse_args(
        ["--rpm", "500", "--rpm", "gpt-4o=50", "--tpm", "90000", "--rate-window", "2"]
    )
    assert ({"*": 500.0, "gpt-4o": 50.0}, 90_000.0, 2.0) == (args.rpm, args.tpm, args.rate_window)


@pytest.mark.parametrize("bad", ["0", "-5", "x", "gpt-4o=", "=5", "nan"])
def test_the_command_line_refuses_a_bad_limit(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A limit that is not a positive number (or names no model) is refused by name."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--rpm", bad])
    assert "--rpm" in capsys.readouterr().err
