"""Batch output lines, one function at a time: parsing, success, failure kinds, matching.

Unit-level (no emulator): each test states the exact line and the exact outcome, so
a change to what a line means for its request (retry or not, which error, which
message, which fields) fails here. The lines follow ``BatchRequestOutput`` in
openai/openai-openapi: ``{"id", "custom_id", "response": {"status_code",
"request_id", "body"} | null, "error": {"code", "message"} | null}``.
"""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inert._errors import (
    ApiError,
    CancelledRequestError,
    ExpiredError,
    RateLimitError,
    RequestError,
)
from inert._json import JSON
from inert._runners._batch._output import (
    RETRYABLE_LINE_STATUSES,
    Collected,
    LineMatcher,
    OutputLine,
    ParsedFile,
    is_success,
    line_failure,
    match_lines,
    parse_output_file,
    parse_output_lines,
)

ANSWER: JSON = {"id": "chatcmpl-1", "choices": [{"message": {"content": "hi"}}]}


def fields(error: RequestError) -> tuple[type[RequestError], str, int | None, str | None, JSON]:
    """Everything an error carries (errors compare by class and message only)."""
    if isinstance(error, ApiError):
        return type(error), error.message, error.status, error.code, error.body
    return type(error), error.message, None, None, None


def error_body(message: str, code: str | None) -> JSON:
    return {"error": {"message": message, "code": code, "type": "invalid_request_error"}}


# parse_output_file


def test_a_well_formed_output_file_parses_to_its_lines_in_order() -> None:
    """Answered lines, a failed line with no response, a response without a status."""
    data = (
        json.dumps(
            {
                "id": "l1",
                "custom_id": "a",
                "response": {"status_code": 200, "body": ANSWER},
                "error": None,
            }
        )
        + "\n"
        + json.dumps(
            {
                "custom_id": "b",
                "response": None,
                "error": {"code": "batch_expired", "message": "late"},
            }
        )
        + "\n"
        + json.dumps({"custom_id": "c", "response": {"body": {"x": 1}}})
        + "\n"
    )
    parsed = parse_output_file(data.encode())
    assert (
        ParsedFile(
            [
                OutputLine("a", 200, ANSWER, None),
                OutputLine("b", None, None, {"code": "batch_expired", "message": "late"}),
                OutputLine("c", None, {"x": 1}, None),
            ],
            [],
            [],
        )
        == parsed
    )
    assert parsed == parse_output_file(data)
    assert parsed == parse_output_file(io.BytesIO(data.encode()))
    assert (parsed.lines, []) == parse_output_lines(data)


def test_blank_pieces_are_skipped_and_cut_lines_are_unreadable() -> None:
    """Empty and whitespace-only pieces say nothing; a cut line is described, with its text."""
    data = b'\n   \n{"custom_id": "a", "response": null, "error": null}\n{"custom_id": "b", "resp'
    parsed = parse_output_file(data)
    assert [OutputLine("a", None, None, None)] == parsed.lines
    assert [] == parsed.malformed
    (text,) = parsed.unreadable
    assert text.startswith("unreadable output line (")
    assert text.endswith('): {"custom_id": "b", "resp')


def test_nan_is_unreadable() -> None:
    """NaN cannot be stored as JSON: the line is unreadable, not an answer."""
    data = (
        b'{"custom_id": "a", "response": {"status_code": 200, "body": {"x": NaN}}, "error": null}'
    )
    parsed = parse_output_file(data)
    assert [] == parsed.lines
    assert 1 == len(parsed.unreadable)
    assert parsed.unreadable[0].startswith("unreadable output line (")


@pytest.mark.parametrize(
    "item",
    [
        [1, 2],
        "text",
        {"custom_id": 12, "response": None, "error": None},
        {"custom_id": None, "response": None, "error": None},
        {"response": None, "error": None},
        {"custom_id": "a", "response": None, "error": "not an object"},
        {"custom_id": "a", "response": None, "error": ["x"]},
        {"custom_id": "a", "response": "not an object", "error": None},
        {"custom_id": "a", "response": [200], "error": None},
        {"custom_id": "a", "response": {"status_code": "200", "body": {}}, "error": None},
        {"custom_id": "a", "response": {"status_code": 200.0, "body": {}}, "error": None},
        {"custom_id": "a", "response": {"status_code": True, "body": {}}, "error": None},
    ],
)
def test_lines_of_the_wrong_shape_are_malformed(item: JSON) -> None:
    """Any field of the wrong type makes the line malformed, described with its text."""
    raw = json.dumps(item)
    parsed = parse_output_file(raw + "\n")
    assert [] == parsed.lines
    assert [f"malformed output line (not a batch output line): {raw}"] == parsed.malformed
    assert [] == parsed.unreadable
    assert ([], parsed.malformed) == parse_output_lines(raw)


def test_a_line_with_an_error_object_and_a_response_keeps_both() -> None:
    line = {
        "custom_id": "a",
        "response": {"status_code": 500, "body": {"b": 1}},
        "error": {"code": "x"},
    }
    assert [OutputLine("a", 500, {"b": 1}, {"code": "x"})] == parse_output_file(
        json.dumps(line)
    ).lines


def test_long_bad_lines_are_shown_cut_to_200_characters() -> None:
    """A description never holds a whole (possibly huge) line."""
    raw = json.dumps(["x" * 1000])
    (text,) = parse_output_file(raw).malformed
    assert "malformed output line (not a batch output line): " + raw[:200] == text
    cut = '{"custom_id": "' + "é" * 500
    (unreadable,) = parse_output_file(cut.encode()).unreadable
    shown = unreadable.split("): ", 1)[1]
    assert cut[:200] == shown


def test_bad_lines_are_shown_as_read_without_their_newline() -> None:
    """A file read line by line keeps each ``\\n``: the description drops it, and only it."""
    data = io.BytesIO(b"[1]  \nnot json X\n\n\t[2]\t\n")
    parsed = parse_output_file(data)
    assert [
        "malformed output line (not a batch output line): [1]  ",
        "malformed output line (not a batch output line): \t[2]\t",
    ] == parsed.malformed
    (unreadable,) = parsed.unreadable
    assert unreadable.endswith("): not json X")


def test_a_bad_line_is_shown_from_its_first_400_bytes() -> None:
    """Cut at 400 bytes on a character boundary, the text ends with no replacement mark."""
    cut = b'{"custom_id": "' + "😀".encode() * 200
    assert 15 == len(cut) - 800
    raw = b"{" + cut  # 16 bytes before the emoji: byte 400 ends the 96th
    (unreadable,) = parse_output_file(raw).unreadable
    assert unreadable.endswith('): {{"custom_id": "' + "😀" * 96)


def test_unreadable_and_malformed_lines_are_listed_in_that_order_after_the_lines() -> None:
    data = b'{"cut\n[1]\n'
    lines, bad = parse_output_lines(data)
    assert [] == lines
    assert 2 == len(bad)
    assert bad[0] == "malformed output line (not a batch output line): [1]"
    assert bad[1].startswith("unreadable output line (")


# is_success


@pytest.mark.parametrize(
    ("line", "success"),
    [
        (OutputLine("a", 200, ANSWER, None), True),
        (OutputLine("a", 200, {"error": None, "x": 1}, None), True),
        (OutputLine("a", 201, ANSWER, None), False),
        (OutputLine("a", None, ANSWER, None), False),
        (OutputLine("a", 200, ANSWER, {"code": "x"}), False),
        (OutputLine("a", 200, [ANSWER], None), False),
        (OutputLine("a", 200, "text", None), False),
        (OutputLine("a", 200, None, None), False),
        (OutputLine("a", 200, error_body("bad", "c"), None), False),
    ],
)
def test_only_a_200_line_with_an_answer_object_is_a_success(
    line: OutputLine, success: bool
) -> None:
    assert success is is_success(line)


# line_failure


def test_a_200_line_whose_body_is_an_error_object_is_a_final_api_error() -> None:
    body = error_body("the model refused", "content_policy")
    retryable, error = line_failure(OutputLine("a", 200, body, None), "batch_1")
    assert not retryable
    assert (
        ApiError,
        "batch batch_1: the API answered 200 with an error object: the model refused",
        200,
        "content_policy",
        body,
    ) == fields(error)


def test_a_200_line_with_an_answer_but_an_error_field_fails_by_its_error() -> None:
    """A line with status 200 and a line error is not an answer: its error decides."""
    line = OutputLine("a", 200, ANSWER, {"code": "server_error", "message": "boom"})
    retryable, error = line_failure(line, "b1")
    assert not retryable
    assert (ApiError, "batch b1: the line failed: boom", None, "server_error", ANSWER) == fields(
        error
    )


def test_a_200_line_that_is_no_error_object_and_no_answer_fails_with_no_message() -> None:
    """A 200 line whose body is not an object (so not an answer): a final failure, its body kept."""
    retryable, error = line_failure(OutputLine("a", 200, "text", None), "b1")
    assert not retryable
    assert (ApiError, "batch b1: the line failed: no message", None, None, "text") == fields(error)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (404, False),
        (407, False),
        (408, True),
        (409, True),
        (410, False),
        (422, False),
        (499, False),
        (500, True),
        (501, True),
        (503, True),
        (599, True),
        (201, False),
        (302, False),
    ],
)
def test_a_failed_status_is_an_api_error_retried_when_transient(
    status: int, retryable: bool
) -> None:
    body = error_body("it went wrong", "some_code")
    got_retryable, error = line_failure(OutputLine("id", status, body, None), "batch_9")
    assert retryable is got_retryable
    assert (
        ApiError,
        f"batch batch_9: HTTP {status}: it went wrong",
        status,
        "some_code",
        body,
    ) == fields(error)


def test_a_429_line_is_a_retryable_rate_limit_error() -> None:
    body = error_body("slow down", "rate_limit_exceeded")
    retryable, error = line_failure(OutputLine("id", 429, body, None), "batch_9")
    assert retryable
    assert (
        RateLimitError,
        "batch batch_9: HTTP 429: slow down",
        429,
        "rate_limit_exceeded",
        body,
    ) == fields(error)


@pytest.mark.parametrize("body", [None, "text", {"error": "flat"}, {"detail": "x"}])
def test_a_failed_status_without_an_error_object_says_no_message(body: JSON) -> None:
    retryable, error = line_failure(OutputLine("id", 503, body, None), "b")
    assert retryable
    assert (ApiError, "batch b: HTTP 503: no message", 503, None, body) == fields(error)


def test_a_failed_status_keeps_a_message_without_a_code() -> None:
    body: JSON = {"error": {"message": 7, "code": 9}}
    _, error = line_failure(OutputLine("id", 400, body, None), "b")
    assert (ApiError, "batch b: HTTP 400: no message", 400, None, body) == fields(error)
    body = {"error": {"message": "m"}}
    _, error = line_failure(OutputLine("id", 400, body, None), "b")
    assert (ApiError, "batch b: HTTP 400: m", 400, None, body) == fields(error)


def test_a_failed_status_wins_over_a_line_error() -> None:
    """With a non-200 status, the response body decides, not the line's error field."""
    body = error_body("from the body", "body_code")
    line = OutputLine("id", 400, body, {"code": "batch_expired", "message": "from the line"})
    retryable, error = line_failure(line, "b")
    assert not retryable
    assert (ApiError, "batch b: HTTP 400: from the body", 400, "body_code", body) == fields(error)


def test_an_expired_line_is_retried_as_expired() -> None:
    line = OutputLine("id", None, None, {"code": "batch_expired", "message": "ran out of time"})
    retryable, error = line_failure(line, "batch_7")
    assert retryable
    assert (
        ExpiredError,
        "batch batch_7: the line expired before it ran: ran out of time",
    ) == fields(error)[:2]
    assert type(error) is ExpiredError


def test_a_cancelled_line_is_retried_as_cancelled() -> None:
    line = OutputLine("id", None, None, {"code": "batch_cancelled", "message": "cancelled by user"})
    retryable, error = line_failure(line, "batch_7")
    assert retryable
    assert type(error) is CancelledRequestError
    assert "batch batch_7: the line was cancelled: cancelled by user" == error.message


def test_an_expired_code_on_a_200_line_is_still_expired() -> None:
    """A 200 line that carries the batch_expired line error is expired, not an answer."""
    line = OutputLine("id", 200, None, {"code": "batch_expired", "message": "m"})
    retryable, error = line_failure(line, "b")
    assert retryable
    assert type(error) is ExpiredError
    assert "batch b: the line expired before it ran: m" == error.message


def test_another_line_error_is_final_and_keeps_the_line_error_as_body() -> None:
    line_error: JSON = {"code": "invalid_request", "message": "no such model"}
    retryable, error = line_failure(OutputLine("id", None, None, line_error), "b2")
    assert not retryable
    assert (
        ApiError,
        "batch b2: the line failed: no such model",
        None,
        "invalid_request",
        line_error,
    ) == fields(error)


def test_a_line_with_no_error_and_no_status_fails_with_no_message() -> None:
    retryable, error = line_failure(OutputLine("id", None, {"x": 1}, None), "b3")
    assert not retryable
    assert (ApiError, "batch b3: the line failed: no message", None, None, None) == fields(error)


def test_retryable_statuses_are_the_transient_ones() -> None:
    assert frozenset({408, 409, 429}) == RETRYABLE_LINE_STATUSES


# match_lines


def parsed(
    *lines: OutputLine, malformed: tuple[str, ...] = (), unreadable: tuple[str, ...] = ()
) -> ParsedFile:
    return ParsedFile(list(lines), list(malformed), list(unreadable))


def test_lines_are_matched_to_known_ids_across_files() -> None:
    a = OutputLine("a", 200, ANSWER, None)
    b = OutputLine("b", None, None, {"code": "batch_expired", "message": "m"})
    matched = match_lines("batch_1", [parsed(a), parsed(b)], {"a", "b", "c"})
    assert {"a": a, "b": b} == matched.lines
    assert frozenset() == matched.conflicts
    assert [] == matched.anomalies


def test_bad_lines_and_stray_ids_are_anomalies_never_assigned() -> None:
    stray = OutputLine("s" * 300, 200, ANSWER, None)
    files = [parsed(stray, malformed=("m1",), unreadable=("u1",)), parsed(unreadable=("u2",))]
    matched = match_lines("batch_1", files, {"a"})
    assert {} == matched.lines
    assert [
        (None, "m1"),
        (None, "u1"),
        (
            "s" * 200,
            "batch batch_1 returned a line whose custom_id is not in its input; "
            "it was not assigned to any request",
        ),
        (None, "u2"),
    ] == matched.anomalies


def test_lines_after_a_stray_or_duplicate_line_are_still_matched() -> None:
    a = OutputLine("a", 200, ANSWER, None)
    b = OutputLine("b", 200, ANSWER, None)
    c = OutputLine("c", 200, ANSWER, None)
    stray = OutputLine("zz", 200, ANSWER, None)
    matched = match_lines("b1", [parsed(a, stray, b, a, c)], {"a", "b", "c"})
    assert {"a": a, "b": b, "c": c} == matched.lines
    assert ["zz", "a"] == [cid for cid, _ in matched.anomalies]


def test_an_identical_duplicate_counts_once() -> None:
    a = OutputLine("a", 200, ANSWER, None)
    matched = match_lines("batch_1", [parsed(a, a)], {"a"})
    assert {"a": a} == matched.lines
    assert frozenset() == matched.conflicts
    assert [("a", "batch batch_1 returned custom_id a twice")] == matched.anomalies


def test_two_different_lines_for_one_id_are_a_conflict_and_neither_is_kept() -> None:
    a = OutputLine("a", 200, ANSWER, None)
    forged = OutputLine("a", 200, {"forged": True}, None)
    b = OutputLine("b", 200, ANSWER, None)
    matched = match_lines("batch_1", [parsed(a, b), parsed(forged, a)], {"a", "b"})
    assert {"b": b} == matched.lines
    assert frozenset({"a"}) == matched.conflicts
    assert [
        ("a", "batch batch_1 returned two different lines for custom_id a; neither was stored"),
    ] == matched.anomalies


def test_a_third_line_after_a_conflict_is_not_kept() -> None:
    a = OutputLine("a", 200, ANSWER, None)
    forged = OutputLine("a", 500, None, None)
    matched = match_lines("b", [parsed(a, forged, a)], {"a"})
    assert {} == matched.lines
    assert frozenset({"a"}) == matched.conflicts


def test_collected_defaults_say_nothing_went_wrong() -> None:
    collected = Collected("batch_1", "completed", {})
    assert (frozenset(), None, None, None, None, False) == (
        collected.conflicts,
        collected.batch_error,
        collected.batch_error_code,
        collected.cancel,
        collected.incomplete,
        collected.doubtful,
    )


# LineMatcher: match_lines one file at a time, counting the shard's ids of each file

_IDS = st.sampled_from(["a", "b", "c", "stray"])
_LINES = st.builds(
    OutputLine,
    _IDS,
    st.sampled_from([200, 500, None]),
    st.sampled_from([ANSWER, {"other": 1}, None]),
    st.none(),
)
_FILES = st.lists(
    st.builds(
        ParsedFile,
        st.lists(_LINES, max_size=6),
        st.lists(st.sampled_from(["m1", "m2"]), max_size=2),
        st.lists(st.sampled_from(["u1"]), max_size=1),
    ),
    max_size=3,
)


@given(_FILES)
def test_matching_file_by_file_is_matching_them_together(files: list[ParsedFile]) -> None:
    known = {"a", "b", "c"}
    matcher = LineMatcher("batch_1", known)
    for file in files:
        matcher.add(file)
    together = match_lines("batch_1", files, known)
    assert (together.lines, together.conflicts, together.anomalies) == (
        matcher.matched().lines,
        matcher.matched().conflicts,
        matcher.matched().anomalies,
    )


@given(_FILES.filter(lambda files: len(files) == 1))
def test_a_matcher_counts_each_known_id_of_its_file_once(files: list[ParsedFile]) -> None:
    known = {"a", "b", "c"}
    matcher = LineMatcher("batch_1", known)
    matcher.add(files[0])
    assert len({line.custom_id for line in files[0].lines} & known) == matcher.ids_seen


def test_a_cleared_matcher_forgets_the_file_read_before() -> None:
    a = OutputLine("a", 200, ANSWER, None)
    b = OutputLine("b", 200, ANSWER, None)
    matcher = LineMatcher("batch_1", {"a", "b"})
    matcher.add(parsed(a, OutputLine("a", 500, None, None), malformed=("m",)))
    matcher.clear()
    matcher.add(parsed(b))
    assert ({"b": b}, frozenset(), [], 1) == (
        matcher.matched().lines,
        matcher.matched().conflicts,
        matcher.matched().anomalies,
        matcher.ids_seen,
    )
