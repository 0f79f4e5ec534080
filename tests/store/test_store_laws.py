"""Laws of the store and of the answer predicate, over generated keys and bodies."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from inert import Op, Store
from inert._answers import error_object, is_answer
from inert._json import JSON

json_values: st.SearchStrategy[JSON] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)

bodies: st.SearchStrategy[JSON] = json_values | st.builds(
    lambda rest, error: {**rest, "error": error},
    st.dictionaries(st.text(max_size=6), json_values, max_size=3),
    json_values,
)


@given(bodies)
def test_a_body_is_an_answer_exactly_when_it_is_no_error_object(raw: JSON) -> None:
    """``is_answer`` and ``error_object`` agree, and only a set ``error`` member refuses a body."""
    refused = isinstance(raw, dict) and raw.get("error") is not None
    assert (not refused) == is_answer(raw)
    assert refused == (error_object(raw) is not None)


def op(i: int) -> Op[JSON]:
    """The ``i``-th small op."""
    return Op(endpoint="/v1/x", body={"i": i}, decode=lambda raw: raw)


@settings(max_examples=25, deadline=None)
@given(
    stored=st.sets(st.integers(0, 30), max_size=12),
    forgotten=st.sets(st.integers(0, 40), max_size=12),
    failed=st.sets(st.integers(0, 30), max_size=5),
)
def test_forget_removes_exactly_the_given_answers(
    stored: set[int], forgotten: set[int], failed: set[int]
) -> None:
    """After forget(F), the store holds S - F; it reports |S & F|; keys() --failed finds error objects."""
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "s.sqlite3") as store:
        store.put_responses(
            [(op(i), {"error": {"message": "no"}} if i in failed else {"i": i}) for i in stored]
        )
        assert {op(i).key for i in stored & failed} == {a.key for a in store.answers(failed=True)}
        assert len(stored & forgotten) == store.forget(op(i).key for i in forgotten)
        keys = [op(i).key for i in range(41)]
        assert {op(i).key for i in stored - forgotten} == set(store.get_responses(keys))
        assert len(stored - forgotten) == store.stats().answers
