"""Running the emulator: in a background thread for tests, or in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Final, NoReturn

import uvicorn

from ._anthropic import PREFIX as ANTHROPIC_PREFIX
from ._anthropic_batches import ID_PREFIX as MESSAGE_BATCH_PREFIX
from ._app import ACCESS_LOG, build_app
from ._faults import KINDS, Faults
from ._files import DEFAULT_FILE_TTL
from ._ledger import Ledger
from ._ratelimit import RateLimit, RateLimits, add_rate_limit_arguments
from ._state import ANY_MODEL, State, TokenLimit

API_KEY_ENV: Final = "INERT_EMULATOR_API_KEY"
"""The environment variable the command line reads the required key from."""

DEFAULT_MAX_LINES: Final = 50_000
DEFAULT_MAX_FILE_BYTES: Final = 200 * 1024 * 1024
_START_TIMEOUT: Final = 10.0
_BACKLOG: Final = 2048
"""Pending connections the socket queues (uvicorn's default backlog)."""


def _bind(host: str, port: int) -> socket.socket:
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections
    # only then, and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class Emulator:
    """A local OpenAI-compatible server (model calls, files, batches, faults).

    ``with Emulator() as emu:`` serves on a free loopback port in a background
    thread; point a client at ``emu.base_url``. ``emu.ledger`` records what was
    billed; ``emu.set_faults(...)`` changes faults while it runs.

    Args:
        faults: fault rates; none by default.
        time_scale: multiplies every batch duration (10 is ten times slower); a
            whole batch takes about ``1.1 * time_scale`` seconds.
        latency_ms: added to every model call.
        api_key: the bearer key to require; None accepts any non-empty key.
        seed: seeds the fault draws (None: a fresh seed).
        host: the interface to listen on.
        port: the port; 0 picks a free one.
        max_lines: the most lines a batch input file may have.
        max_file_bytes: the largest batch input file.
        file_ttl: seconds until a batch input, output or error file expires
            (30 days by default, as at OpenAI; None: never). An upload's
            ``expires_after`` or a batch's ``output_expires_after`` overrides it.
        enqueued_token_limit: the most prompt tokens that validating and
            in-progress batches may hold per model (one number for every model,
            or a mapping per model where the key ``"*"`` covers the models not
            named); a batch that would exceed it fails with
            ``token_limit_exceeded``. None: no limit.
        access_log: log one line per request (client, method, path, status,
            milliseconds; never headers or bodies) at INFO on the
            ``inert.emulator.access`` logger.
        rpm: requests per minute allowed per model, for every model (a number) or
            per model (``{"gpt-4o-mini": 500, "*": 100}``); None for no limit.
        tpm: tokens per minute per model, likewise (see ``docs/emulator.md`` for how
            a request's tokens are counted).
        rate_window: seconds' worth of requests and tokens a full limit bucket holds
            (60 as at OpenAI; smaller for a smaller burst at the same rate).
    """

    def __init__(
        self,
        *,
        faults: Faults | None = None,
        time_scale: float = 1.0,
        latency_ms: float = 0.0,
        api_key: str | None = None,
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_lines: int = DEFAULT_MAX_LINES,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        file_ttl: float | None = DEFAULT_FILE_TTL,
        enqueued_token_limit: int | Mapping[str, int] | None = None,
        access_log: bool = False,
        rpm: RateLimit = None,
        tpm: RateLimit = None,
        rate_window: float = 60.0,
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive, not {time_scale!r}")
        if latency_ms < 0:
            raise ValueError(f"latency_ms must not be negative, not {latency_ms!r}")
        if file_ttl is not None and file_ttl < 0:
            raise ValueError(f"file_ttl must not be negative, not {file_ttl!r}")
        _check_token_limit(enqueued_token_limit)
        self._state = State(
            faults=faults or Faults(),
            time_scale=time_scale,
            seed=seed,
            max_lines=max_lines,
            max_file_bytes=max_file_bytes,
            latency_ms=latency_ms,
            file_ttl=file_ttl,
            enqueued_token_limit=enqueued_token_limit,
        )
        self.ledger: Final[Ledger] = self._state.ledger
        self.rate_limits: Final = RateLimits(rpm=rpm, tpm=tpm, window=rate_window)
        """The per-model RPM/TPM limits in force (``events()`` lists what they saw)."""
        self.app: Final = build_app(
            self._state, api_key=api_key, access_log=access_log, rate_limits=self.rate_limits
        )
        self.host: Final = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def __repr__(self) -> str:
        running = "running" if self._server is not None else "stopped"
        return f"<Emulator {self.base_url if self._server else self.host} {running}>"

    # --- settings that tests may change while it runs --------------------------------

    @property
    def faults(self) -> Faults:
        """The faults now in force."""
        return self._state.faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the faults; requests that arrive afterwards see the new ones."""
        self._state.faults = faults

    @property
    def latency_ms(self) -> float:
        """Milliseconds added to every model call."""
        return self._state.latency_ms

    def set_latency_ms(self, latency_ms: float) -> None:
        """Change the added latency."""
        self._state.latency_ms = latency_ms

    @property
    def time_scale(self) -> float:
        """The timeline scale given to batches created from now on."""
        return self._state.time_scale

    def set_time_scale(self, time_scale: float) -> None:
        """Change the timeline scale of batches created from now on."""
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive, not {time_scale!r}")
        self._state.time_scale = time_scale

    def set_rate_limits(
        self, *, rpm: RateLimit = None, tpm: RateLimit = None, window: float | None = None
    ) -> None:
        """Replace the RPM and TPM limits (None: none); requests arriving afterwards see them."""
        self.rate_limits.set(rpm=rpm, tpm=tpm, window=window)

    def reset(self) -> None:
        """Forget every file, batch, charge and queued fault, reseed the fault draws, refill
        the rate-limit buckets."""
        self._state.reset()
        self.rate_limits.reset()

    def settle(self) -> None:
        """Run every batch at the server to its end now, billing what that run bills.

        Batches run and bill on the emulator's clock whether or not anyone polls
        them (as at OpenAI); ``settle`` fast-forwards the rest of their timelines
        (cancels in progress finish, planned expiries and cancels happen), so the
        ledger read afterwards is final. Call it before every "billed once" check.
        """
        self._state.settle()

    def inject(
        self,
        route: str,
        kind: str,
        *,
        count: int = 1,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Queue a fault for the next ``count`` requests to ``route`` (one-shot, in order).

        Args:
            route: one of ``ROUTES``: ``"chat.completions"``, ``"embeddings"``,
                ``"responses"``, ``"completions"``, ``"moderations"``,
                ``"files.create"``, ``"files.list"``, ``"files.retrieve"``,
                ``"files.content"``, ``"files.delete"``, ``"batches.create"``,
                ``"batches.list"``, ``"batches.retrieve"``, ``"batches.cancel"``.
            kind: ``"rate_limit"`` (429), ``"server_error"`` (500 unless
                ``status``), ``"disconnect"`` (connection dropped mid-answer),
                ``"not_json"`` (an HTML page, status 200 unless ``status``),
                ``"create_lost"`` (``batches.create`` only: the batch is made,
                then the answer is dropped, or is ``status`` if given) or
                ``"truncated"`` (``files.content`` only: the body is cut short).
            count: how many requests in a row suffer it.
            status: the HTTP status to answer with, where the kind allows one.
            retry_after: seconds for a ``Retry-After`` header (429 or 5xx); none
                is sent when omitted.

        Raises:
            ValueError: an unknown route or kind, or one that does not fit.
        """
        self._state.injections.add(route, kind, count=count, status=status, retry_after=retry_after)

    def cancel_batch(self, batch_id: str) -> bool:
        """Cancel a batch as someone else would (the dashboard, another process).

        It goes ``cancelling`` then ``cancelled``; lines not run by then end as
        ``batch_cancelled``. Returns False (and changes nothing) when the batch
        had already ended or was cancelling. An Anthropic Message Batch id
        (``msgbatch_...``) goes ``canceling`` then ``ended``, its unrun requests
        ``canceled``.

        Raises:
            KeyError: no batch has this id.
        """
        if batch_id.startswith(MESSAGE_BATCH_PREFIX):
            return self._state.message_batches.cancel_elsewhere(batch_id)
        return self._state.cancel_elsewhere(batch_id)

    def expire_files(self, purpose: str | None = None) -> list[str]:
        """Make every file that has an expiry expire now; returns their ids.

        Input files of purpose ``batch`` and batch output and error files expire
        (after ``file_ttl``); other files only with an ``expires_after``. Give
        ``purpose`` (``"batch_output"`` for output and error files) to expire only
        those. Expired files answer 404 "No such File object" and are not listed.
        The results of ended Anthropic Message Batches are archived as well (as
        29 days after creation): they answer 404 ``not_found_error``.
        """
        return self._state.expire_files(purpose)

    def expire(self, batch_id: str) -> None:
        """Make a running batch expire now: done lines in the output, the rest expired."""
        if batch_id.startswith(MESSAGE_BATCH_PREFIX):
            self._state.message_batches.expire(batch_id)
            return
        self._state.expire_batch(batch_id)

    def queued_tokens(self, model: str) -> int:
        """Prompt tokens now enqueued for ``model`` (its validating and in-progress batches)."""
        self._state.advance_all()
        return self._state.queued_tokens(model)

    def message_batch_ids(self) -> list[str]:
        """Ids of every Anthropic Message Batch created since the last reset, oldest first."""
        with self._state.lock:
            return list(self._state.message_batches.batches)

    def batch_ids(self) -> list[str]:
        """Ids of every batch created since the last reset, oldest first."""
        with self._state.lock:
            return list(self._state.batches)

    # --- serving -------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port it listens on (known once started when created with port 0)."""
        if self._socket is not None:
            port: int = self._socket.getsockname()[1]
            return port
        return self._port

    @property
    def url(self) -> str:
        """The server's root, e.g. ``http://127.0.0.1:8321``."""
        return f"http://{self.host}:{self.port}"

    @property
    def anthropic_base_url(self) -> str:
        """What to give ``anthropic.Anthropic(base_url=...)``, e.g. ``http://127.0.0.1:8321/anthropic``."""
        return f"{self.url}{ANTHROPIC_PREFIX}"

    @property
    def base_url(self) -> str:
        """What to give ``openai.OpenAI(base_url=...)``, e.g. ``http://127.0.0.1:8321/v1``."""
        return f"{self.url}/v1"

    def _make_server(self) -> uvicorn.Server:
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=30,
        )
        return uvicorn.Server(config)

    def start(self) -> Emulator:
        """Serve in a daemon thread; returns once it accepts connections."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._socket = _bind(self.host, self._port)
        server = self._make_server()
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [self._socket]},
            name="inert-emulator",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator did not start")
            time.sleep(0.002)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        server, thread, sock = self._server, self._thread, self._socket
        self._server = self._thread = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=10)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(timeout=5)
        if sock is not None:
            sock.close()
            self._socket = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Emulator:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def serve_forever(self, announce: Callable[[str], None] | None = None) -> None:
        """Serve in the calling thread until interrupted (Ctrl-C).

        ``announce`` is called with ``base_url`` once the socket listens: a client
        that connects as soon as it reads the address is queued until the server
        runs, never refused.

        Raises:
            OSError: the port cannot be bound.
        """
        self._socket = _bind(self.host, self._port)
        try:
            # uvicorn listens only once its loop has started; listening here first
            # closes the gap between the announcement and that moment.
            self._socket.listen(_BACKLOG)
            if announce is not None:
                announce(self.base_url)
            self._make_server().run(sockets=[self._socket])
        except KeyboardInterrupt:
            pass
        finally:
            self._socket.close()
            self._socket = None


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8321,
    faults: Faults | None = None,
    latency_ms: float = 0.0,
    time_scale: float = 1.0,
    api_key: str | None = None,
    seed: int | None = None,
    access_log: bool = False,
    rpm: RateLimit = None,
    tpm: RateLimit = None,
    rate_window: float = 60.0,
) -> None:
    """Serve the emulator in the foreground until interrupted (arguments as ``Emulator``)."""
    Emulator(
        faults=faults,
        latency_ms=latency_ms,
        time_scale=time_scale,
        api_key=api_key,
        seed=seed,
        access_log=access_log,
        host=host,
        port=port,
        rpm=rpm,
        tpm=tpm,
        rate_window=rate_window,
    ).serve_forever()


def _check_token_limit(limit: TokenLimit) -> None:
    limits = [limit] if limit is None or isinstance(limit, int) else list(limit.values())
    for value in limits:
        if value is not None and (isinstance(value, bool) or value < 1):
            raise ValueError(f"an enqueued token limit must be a positive integer, not {value!r}")


def _fault(spec: str) -> str:
    try:
        Faults.parse([spec])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return spec


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _positive(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def _ttl(text: str) -> float | None:
    if text.strip().lower() in ("none", "never"):
        return None
    return _non_negative(text)


def _token_limit(text: str) -> tuple[str | None, int]:
    model, sep, number = text.rpartition("=")
    try:
        value = int(number)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not N or MODEL=N with N a positive integer"
        ) from None
    if value < 1 or (sep and not model):
        raise argparse.ArgumentTypeError(f"{text!r} is not N or MODEL=N with N a positive integer")
    return (model if sep else None), value


def token_limits(specs: list[tuple[str | None, int]]) -> TokenLimit:
    """The ``enqueued_token_limit`` of ``--enqueued-token-limit`` values.

    ``N`` applies to every model; ``MODEL=N`` to one model (and wins over ``N``).
    """
    default = next((n for model, n in reversed(specs) if model is None), None)
    per_model = {model: n for model, n in specs if model is not None}
    if not per_model:
        return default
    if default is not None:
        per_model[ANY_MODEL] = default
    return per_model


class _OneLineParser(argparse.ArgumentParser):
    """Errors are one line naming the way out, exit status 2 (every ``inert`` command's rule)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser(prog: str = "inert emulator") -> argparse.ArgumentParser:
    """The command-line parser shared by ``inert emulator`` and ``python -m inert.emulator``."""
    parser = _OneLineParser(
        prog=prog,
        description="Serve a local OpenAI-compatible emulator (chat, responses, completions, "
        "moderations, embeddings, files, batches).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8321,
        help="port to listen on; 0 picks a free one (default 8321)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=_fault,
        metavar="KIND=RATE",
        help=f"inject a fault in a fraction RATE (0 to 1) of cases; repeatable. Kinds: {', '.join(KINDS)}",
    )
    parser.add_argument(
        "--latency-ms",
        type=_non_negative,
        default=0.0,
        help="added to every model call",
    )
    parser.add_argument(
        "--time-scale",
        type=_positive,
        default=1.0,
        help="multiplies batch durations (10 = ten times slower)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"require this bearer key (default: ${API_KEY_ENV} if set, else accept any key; "
        "the variable keeps the key out of the process list)",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="print one line per request on stderr (client, method, path, status, time)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for the fault draws")
    parser.add_argument(
        "--file-ttl",
        type=_ttl,
        default=DEFAULT_FILE_TTL,
        metavar="SECONDS",
        help="seconds until batch input, output and error files expire "
        "(default 2592000, 30 days as at OpenAI; 'none' never)",
    )
    parser.add_argument(
        "--enqueued-token-limit",
        type=_token_limit,
        action="append",
        default=[],
        metavar="[MODEL=]N",
        help="most prompt tokens validating and in-progress batches may hold per model "
        "(repeatable; MODEL=N for one model); a batch over it fails with token_limit_exceeded",
    )
    add_rate_limit_arguments(parser)
    return parser


def _log_access_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    ACCESS_LOG.addHandler(handler)
    ACCESS_LOG.setLevel(logging.INFO)
    ACCESS_LOG.propagate = False


def main(argv: list[str] | None = None, *, prog: str = "inert emulator") -> int:
    """Parse ``argv`` and serve until interrupted; returns the exit status."""
    args = build_parser(prog).parse_args(argv)
    faults = Faults.parse(args.fault)
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    if args.access_log:
        _log_access_to_stderr()
    emulator = Emulator(
        faults=faults,
        latency_ms=args.latency_ms,
        time_scale=args.time_scale,
        api_key=api_key,
        access_log=args.access_log,
        seed=args.seed,
        host=args.host,
        port=args.port,
        file_ttl=args.file_ttl,
        enqueued_token_limit=token_limits(args.enqueued_token_limit),
        rpm=args.rpm,
        tpm=args.tpm,
        rate_window=args.rate_window,
    )
    try:
        emulator.serve_forever(lambda url: print(f"inert emulator serving on {url}", flush=True))
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
