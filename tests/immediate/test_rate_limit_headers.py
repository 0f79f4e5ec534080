"""The runner reads OpenAI's ``x-ratelimit-*`` headers in every format they come in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inert._runners._pacing import Reading, parse_duration, read_limits
from inert.emulator._ratelimit import go_duration

GUIDE_EXAMPLE = {
    # OpenAI's rate-limit guide, "Rate limits in headers".
    "x-ratelimit-limit-requests": "60",
    "x-ratelimit-limit-tokens": "150000",
    "x-ratelimit-remaining-requests": "59",
    "x-ratelimit-remaining-tokens": "149984",
    "x-ratelimit-reset-requests": "1s",
    "x-ratelimit-reset-tokens": "6m0s",
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("17.142s", 17.142),
        ("1m30.5s", 90.5),
        ("2h0m0s", 7200.0),
        ("1h2m3.5s", 3723.5),
        ("500us", 0.0005),
        ("1.5µs", 1.5e-6),
        ("250ns", 2.5e-7),
        ("0s", 0.0),
        (".5s", 0.5),
        ("12", 12.0),  # plain seconds, as some compatible servers send
        ("0.25", 0.25),
        (" 3s ", 3.0),
    ],
)
def test_reset_durations_parse_in_every_documented_format(text: str, seconds: float) -> None:
    """Go durations (h, m, s, ms, us/µs, ns, combined) and plain seconds all parse."""
    assert seconds == pytest.approx(parse_duration(text))


@pytest.mark.parametrize("text", ["", "s", "1x", "1s2", "-1s", "1 s", "abc", "1d", "inf", "nan"])
def test_unknown_durations_are_ignored_not_guessed(text: str) -> None:
    """Anything else reads as no reset at all."""
    assert parse_duration(text) is None


@given(st.integers(min_value=0, max_value=10 * 24 * 3600 * 1000))
def test_what_the_emulator_writes_the_runner_reads_back(millis: int) -> None:
    """go_duration and parse_duration agree to the millisecond."""
    assert millis / 1000 == pytest.approx(parse_duration(go_duration(millis / 1000)), abs=1e-9)


def test_the_guides_example_reads_as_two_limits() -> None:
    """The guide's sample headers give the request and the token limit with their resets."""
    assert {
        "requests": Reading(60.0, 59.0, 1.0),
        "tokens": Reading(150_000.0, 149_984.0, 360.0),
    } == read_limits(GUIDE_EXAMPLE)


def test_a_limit_without_its_remaining_count_is_not_a_reading() -> None:
    """Only headers that give both the limit and what is left describe a bucket."""
    headers = {k: v for k, v in GUIDE_EXAMPLE.items() if k != "x-ratelimit-remaining-tokens"}
    assert ["requests"] == list(read_limits(headers))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-ratelimit-limit-requests", "lots"),
        ("x-ratelimit-limit-requests", "0"),
        ("x-ratelimit-remaining-requests", "-3"),
        ("x-ratelimit-limit-requests", "inf"),
    ],
)
def test_garbage_in_a_header_drops_that_limit_only(name: str, value: str) -> None:
    """A value that is not a usable number drops its limit; the other limit is still read."""
    assert ["tokens"] == list(read_limits({**GUIDE_EXAMPLE, name: value}))


def test_an_unreadable_reset_keeps_the_limit_without_a_reset() -> None:
    """A reset in an unknown format leaves the limit and remaining count usable."""
    readings = read_limits({**GUIDE_EXAMPLE, "x-ratelimit-reset-tokens": "soon"})
    assert Reading(150_000.0, 149_984.0, None) == readings["tokens"]


def test_no_rate_limit_headers_read_as_no_limits() -> None:
    """An answer from a server without limits (or a proxy that strips them) reports none."""
    assert {} == read_limits({"content-type": "application/json"})
