"""OpenAI's error shape, and the exception the routes raise to answer with it."""

from __future__ import annotations

from inert._json import JSONObject


def error_body(
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> JSONObject:
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``.

    The ``ErrorResponse``/``Error`` components of openai/openai-openapi require all
    four fields; ``param`` and ``code`` may be null.
    """
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class ApiError(Exception):
    """An error answered with OpenAI's error shape and an HTTP status."""

    def __init__(self, status: int, body: JSONObject) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 ``invalid_request_error``."""
    return ApiError(400, error_body(message, param=param, code=code))


def not_found_file(file_id: str) -> ApiError:
    """The 404 OpenAI answers for a file that does not exist, was deleted or expired."""
    return ApiError(404, error_body(f"No such File object: {file_id}", param="id"))
