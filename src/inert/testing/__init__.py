"""Test interpreters and helpers for pipelines built on inert."""

from inert.testing._fake import FakeRunner, Respond

__all__ = ["FakeRunner", "Respond"]

FakeRunner.__module__ = "inert.testing"
