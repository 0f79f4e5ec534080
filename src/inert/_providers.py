"""Which provider serves an op: decided by its endpoint, the one thing every op carries.

OpenAI and Anthropic serve distinct paths (Anthropic's Messages API is
``/v1/messages``, a path OpenAI does not serve), so an op's endpoint names its
provider, its key (``sha256`` of endpoint and body) never collides across
providers, and a runner sends each op through the client of that provider. Every
endpoint not listed here is OpenAI's (or an OpenAI-compatible server's), as it was
before providers were told apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    import anthropic
    import openai

Provider = Literal["openai", "anthropic"]
"""The providers a runner can send to."""

PROVIDERS: Final[tuple[Provider, ...]] = ("openai", "anthropic")

NAMES: Final[Mapping[Provider, str]] = {"openai": "OpenAI", "anthropic": "Anthropic"}
"""How messages name each provider."""

CLIENTS: Final[Mapping[Provider, str]] = {
    "openai": "openai=openai.AsyncOpenAI(...)",
    "anthropic": "anthropic=anthropic.AsyncAnthropic(...)",
}
"""The runner argument that gives each provider's client (for error messages)."""

_ENDPOINTS: Final[Mapping[str, Provider]] = {"/v1/messages": "anthropic"}


def provider_of(endpoint: str) -> Provider:
    """The provider whose API serves ``endpoint`` (OpenAI unless it is Anthropic's)."""
    return _ENDPOINTS.get(endpoint, "openai")


class MissingClientError(ValueError):
    """A run needs a provider the runner was given no client for.

    Raised in the first round that needs it, before any call of that round is sent.
    """


def check_clients(runner: str, endpoints: Iterable[str], have: Iterable[Provider]) -> None:
    """Raise :class:`MissingClientError` if any of ``endpoints`` needs a client not in ``have``."""
    present = set(have)
    missing: dict[Provider, str] = {}
    for endpoint in endpoints:
        provider = provider_of(endpoint)
        if provider not in present:
            missing.setdefault(provider, endpoint)
    if missing:
        provider, endpoint = next(iter(missing.items()))
        raise MissingClientError(
            f"these requests call {NAMES[provider]} ({endpoint}), but this {runner} has no "
            f"{NAMES[provider]} client; give it one: {runner}(..., {CLIENTS[provider]}); "
            "none of these calls was sent"
        )


def clients_of(
    runner: str,
    client: object,
    openai_client: object,
    anthropic_client: object,
) -> tuple[openai.AsyncOpenAI | None, anthropic.AsyncAnthropic | None]:
    """A runner's clients, checked: the positional OpenAI one or those by name.

    Raises:
        TypeError: no client at all, the OpenAI client twice, or a client of the
            wrong kind (a synchronous one, say); the message names the fix.
    """
    if client is not None and openai_client is not None:
        raise TypeError(
            f"{runner} got the OpenAI client twice; give it once: {runner}(client) or "
            f"{runner}(openai=client)"
        )
    chosen = client if client is not None else openai_client
    if chosen is None and anthropic_client is None:
        raise TypeError(
            f"{runner} needs a client: {runner}(openai.AsyncOpenAI(...)), or by provider "
            f"{runner}(openai=..., anthropic=anthropic.AsyncAnthropic(...))"
        )
    import openai  # the runners import it anyway; anthropic only when its client is given

    if chosen is not None and not isinstance(chosen, openai.AsyncOpenAI):
        hint = (
            " (a synchronous openai.OpenAI; pass openai.AsyncOpenAI(...) instead)"
            if isinstance(chosen, openai.OpenAI)
            else ""
        )
        raise TypeError(
            f"{runner} takes an openai.AsyncOpenAI client; got {type(chosen).__name__}{hint}"
        )
    claude: anthropic.AsyncAnthropic | None = None
    if anthropic_client is not None:
        import anthropic

        if not isinstance(anthropic_client, anthropic.AsyncAnthropic):
            hint = (
                " (a synchronous anthropic.Anthropic; pass anthropic.AsyncAnthropic(...) instead)"
                if isinstance(anthropic_client, anthropic.Anthropic)
                else ""
            )
            raise TypeError(
                f"{runner}'s anthropic= takes an anthropic.AsyncAnthropic client; got "
                f"{type(anthropic_client).__name__}{hint}"
            )
        claude = anthropic_client
    return (
        chosen if isinstance(chosen, openai.AsyncOpenAI) else None,
        claude,
    )
