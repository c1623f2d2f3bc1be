"""structlog set up once per process: JSON lines, ISO timestamps, context from contextvars,
stdlib logs through the same formatter, and secrets dropped before rendering."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Keys whose values never reach a log line (passwords, tokens, keys, coordinates).
SECRET_KEYS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "secret",
        "private_key",
        "latitude",
        "longitude",
        "lat",
        "lon",
        "location",
    }
)


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "[redacted]" if str(k).lower() in SECRET_KEYS else _redact(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_redact(v) for v in value)
    return value


def _drop_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    redacted: MutableMapping[str, Any] = _redact(event_dict)
    return redacted


class _Stderr:
    """Writes each rendered line to the current sys.stderr (looked up per line, so test
    capture works) without the standard library's logging machinery on the hot path."""

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


# The RPC being served in this task (cumulo_platform.interceptors sets it, once per call): its
# fields (request id, method, account) go into every line written during the call, read only
# when a line is written, instead of bound into the context on every call.
CURRENT_CALL: contextvars.ContextVar[Any] = contextvars.ContextVar("cumulo_call")


def _add_call(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    call = CURRENT_CALL.get(None)
    if call is not None:
        for key, value in call.log_fields().items():
            event_dict.setdefault(key, value)
    return event_dict


_debug = False  # whether the last configure_logging let debug lines through


def debug_enabled() -> bool:
    """Whether our debug lines are written (a hot path asks before it makes one)."""
    return _debug


def configure_logging(service: str, level: str = "info", fmt: str = "json") -> None:
    """Our own log calls go straight through structlog (one line per RPC is a hot path);
    third-party libraries' stdlib logs go through the same processors and renderer."""
    global _debug
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    numeric_level = logging.getLevelName(level.upper())
    _debug = numeric_level <= logging.DEBUG
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_call,
            structlog.processors.add_log_level,
            _name_logger,
            timestamper,
            _drop_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        logger_factory=lambda *args: _Stderr(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            _add_call,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            timestamper,
            _drop_secrets,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # Libraries that are chatty at INFO.
    for noisy in ("alembic", "aiobotocore", "botocore", "nats"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> Any:
    # "logger" cannot be an initial value (it names structlog's own argument): _name_logger
    # renames it, so our lines and the standard library's carry the same key.
    return structlog.get_logger(logger_name=name)


def _name_logger(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if "logger_name" in event_dict:
        event_dict["logger"] = event_dict.pop("logger_name")
    return event_dict
