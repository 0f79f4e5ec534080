"""Hypothesis strategies shared by the laws of ops and of the lines built from them."""

from __future__ import annotations

from hypothesis import strategies as st

from inert._json import INT_MAX, INT_MIN, JSON

json_values: st.SearchStrategy[JSON] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(INT_MIN, INT_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
"""Any plain JSON an op's body may hold (integers within the 64 bits the API declares)."""
bodies = st.dictionaries(st.text(), json_values, max_size=5)
"""Plain JSON objects, as op bodies."""
