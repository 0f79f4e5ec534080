"""Errors and the messages about them name public modules, never private ones."""

from __future__ import annotations

import traceback

import pytest

import inert.errors
from inert._errors import ApiError as PrivatelyImportedApiError


@pytest.mark.parametrize("name", inert.errors.__all__)
def test_every_error_says_it_lives_in_inert_errors(name: str) -> None:
    """Each exception class of ``inert.errors`` reports ``inert.errors`` as its module."""
    assert "inert.errors" == getattr(inert.errors, name).__module__


def test_a_traceback_names_the_public_module_however_the_error_was_imported() -> None:
    """A traceback line reads ``inert.errors.ApiError``, not ``inert._errors.ApiError``."""
    line = traceback.format_exception_only(PrivatelyImportedApiError("HTTP 401: bad key"))[-1]
    assert "inert.errors.ApiError: HTTP 401: bad key\n" == line
