"""The answer check of ``parse_output_file``: asked of answer lines only, as they are read.

Collecting a batch asks each answer's decoder whether it is an answer at all
(:func:`inert._answers.rejected_by_decoder`) while the line's objects are fresh;
the ids it refuses are kept apart (never stored), every line is still returned.
"""

from __future__ import annotations

import io
import json

from inert._json import JSON
from inert._runners._batch._output import OutputLine, parse_output_file

ANSWER: JSON = {"choices": [{"message": {"content": "hi"}}]}


def line(cid: str, status: int | None, body: JSON, error: JSON = None) -> str:
    response = None if status is None else {"status_code": status, "body": body}
    return json.dumps({"custom_id": cid, "response": response, "error": error}) + "\n"


DATA = (
    line("a", 200, ANSWER)
    + line("b", 200, {"choices": []})
    + line("c", 500, {"error": {"message": "down"}})
    + line("d", None, None, {"code": "batch_expired", "message": "late"})
    + line("e", 200, {"error": {"message": "no"}})
    + "not json\n"
)


def test_the_check_sees_each_answer_line_once_in_file_order() -> None:
    asked: list[tuple[str, JSON]] = []

    def check(cid: str, body: JSON) -> bool:
        asked.append((cid, body))
        return cid != "b"

    parsed = parse_output_file(DATA.encode(), check)
    # Failed lines (500, expired, a 200 error object) are no answers: never asked.
    assert [("a", ANSWER), ("b", {"choices": []})] == asked
    assert frozenset({"b"}) == parsed.rejected
    assert ["a", "b", "c", "d", "e"] == [item.custom_id for item in parsed.lines]
    assert OutputLine("b", 200, {"choices": []}, None) == parsed.lines[1]
    assert 1 == len(parsed.unreadable)


def test_without_a_check_nothing_is_rejected_and_the_lines_are_the_same() -> None:
    checked = parse_output_file(io.BytesIO(DATA.encode()), lambda _cid, _body: False)
    plain = parse_output_file(DATA)
    assert frozenset() == plain.rejected
    assert frozenset({"a", "b"}) == checked.rejected
    assert (plain.lines, plain.malformed, plain.unreadable) == (
        checked.lines,
        checked.malformed,
        checked.unreadable,
    )
