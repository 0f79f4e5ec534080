"""Which response bodies are answers worth keeping as paid.

Both runners store what the API sends back so that no call is paid twice, but a
body is not always an answer: a proxy or gateway in front of the API may reply
``200 OK`` with an error object (``{"error": {"message": ..., "code": ...}}``), the
shape the OpenAI API itself uses for its error responses (openai-openapi
``ErrorResponse``). Stored as paid, such a body would be served from the cache
forever. One predicate, used by the immediate runner's storing step and by the
batch runner's collection alike, so both modes keep the same things.

A body can also be refused by the op's own decoder as a *transport-level*
failure: the decoder raises :class:`~inert.errors.ApiError` (the API answered
with an error) or :class:`~inert.errors.ConnectionFailedError` (no real answer
arrived). Such a body is not stored either. Every other decoder error
(a refusal, a truncated or invalid answer) is about an answer the model really
gave and paid for, so that body is kept: a changed decoder may accept it later.
"""

from __future__ import annotations

from typing import Any, Final

from inert._errors import ApiError, ConnectionFailedError, RequestError
from inert._json import JSON
from inert._op import Op

TRANSPORT_ERRORS: Final = (ApiError, ConnectionFailedError)
"""Decoder errors that say "this body is no answer" rather than "this answer is bad"."""


def error_object(raw: JSON) -> ApiError | None:
    """The :class:`ApiError` a body stands for, or ``None`` when it is an answer.

    An object whose ``error`` member is set (not ``null``: a Responses API answer
    carries ``"error": null``) is an error report, whatever its HTTP status said.
    Any other body is left to the op's decoder (the OpenAI API answers with
    objects, but fakes and other endpoints may answer with any JSON).
    """
    if not isinstance(raw, dict):
        return None
    error = raw.get("error")
    if error is None:
        return None
    message: object = error
    code: object = None
    if isinstance(error, dict):
        message = error.get("message", error)
        code = error.get("code")
    return ApiError(
        f"the API answered 200 with an error object: {message}",
        status=200,
        code=code if isinstance(code, str) else None,
        body=raw,
    )


def is_answer(raw: JSON) -> bool:
    """True when ``raw`` is no error object (see :func:`error_object`)."""
    return not (isinstance(raw, dict) and raw.get("error") is not None)


def rejected_by_decoder(op: Op[Any], raw: JSON) -> RequestError | None:
    """The transport-level error ``op``'s decoder raises for ``raw``, if it raises one.

    Any other outcome of the decoder (a value, or an error about the answer itself,
    or a bug in the decoder) returns ``None``: the body is an answer. That includes
    an interrupt (``KeyboardInterrupt``, ``SystemExit``) raised by the decoder: this
    check runs inside a runner's fetch, where an interrupt would tear down the event
    loop before the answers are stored; the engine decodes the answer again in the
    run itself, where the interrupt ends the run the orderly way (calls on the wire
    are kept). The answer is paid for, so it is stored first.
    """
    try:
        op.decode(raw)
    except TRANSPORT_ERRORS as error:
        return error
    except BaseException:  # an interrupt too: the engine decodes again and raises it
        return None
    return None


def worth_storing(op: Op[Any], raw: JSON) -> bool:
    """True when ``raw`` may be kept as ``op``'s paid answer (both checks above pass)."""
    return is_answer(raw) and rejected_by_decoder(op, raw) is None
