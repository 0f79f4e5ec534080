"""Test interpreters and helpers for pipelines built on inert."""
