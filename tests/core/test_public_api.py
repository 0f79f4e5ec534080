"""The public surface is exactly what ``__all__`` says (httpx's habit)."""

from __future__ import annotations

import types

import pytest

import inert
import inert.errors
import inert.testing

CONTRACT = {
    "Request", "Op", "call", "pure", "fail", "gather", "gather_all", "traverse",
    "program", "Program", "Runner", "RunReport", "RequestError",
}  # fmt: skip


@pytest.mark.parametrize("module", [inert, inert.errors, inert.testing])
def test_all_lists_exactly_the_public_names(module: types.ModuleType) -> None:
    """Every public attribute is in ``__all__`` and ``__all__`` is sorted."""
    for name in module.__all__:
        getattr(module, name)  # names imported on first use (the runners) are loaded now
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sorted(public) == list(module.__all__)


def test_the_contract_names_are_exported() -> None:
    """The names DESIGN.md promises are importable from ``inert``."""
    assert set(inert.__all__) >= CONTRACT


def test_public_classes_say_they_live_in_the_public_module() -> None:
    """Reprs and docs name ``inert.Request``, not a private module."""
    assert inert.Request.__module__ == "inert"
    assert inert.errors.RefusalError.__module__ == "inert.errors"
