"""configure_logging: JSON lines on stderr, secrets never rendered."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
import structlog

from cumulo_platform.logging import SECRET_KEYS, configure_logging, get_logger

NOISY = ("alembic", "aiobotocore", "botocore", "nats")


@pytest.fixture
def restore_logging():
    """configure_logging changes process-wide state: put the session's set-up back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY}
    config = structlog.get_config()
    context = structlog.contextvars.get_contextvars()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lvl in noisy.items():
        logging.getLogger(name).setLevel(lvl)
    structlog.configure(**config)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**context)


def fresh_logger() -> structlog.stdlib.BoundLogger:
    return get_logger(f"test.logging.{uuid.uuid4().hex[:8]}")


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_line_with_context(capsys, restore_logging):
    configure_logging("unit-svc", "info", "json")
    fresh_logger().info("something_happened", count=3)
    lines = json_lines(capsys.readouterr().err)
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "something_happened"
    assert line["count"] == 3
    assert line["service"] == "unit-svc"
    assert line["level"] == "info"
    assert line["logger"].startswith("test.logging.")
    assert line["timestamp"].endswith("Z")


def test_level_filters(capsys, restore_logging):
    configure_logging("unit-svc", "warning", "json")
    log = fresh_logger()
    log.info("quiet")
    log.warning("loud")
    assert [line["event"] for line in json_lines(capsys.readouterr().err)] == ["loud"]


def test_secret_keys_are_redacted(capsys, restore_logging):
    configure_logging("unit-svc", "info", "json")
    fresh_logger().info(
        "login_attempt",
        email="alice@example.com",
        password="pw-SECRET-hunter2",
        token="tok-SECRET-abc",
        refresh_token="rt-SECRET-def",
        Authorization="Bearer bearer-SECRET-ghi",
        latitude=48.858370,
        longitude=2.294481,
        private_key="pk-SECRET-jkl",
    )
    err = capsys.readouterr().err
    for secret in ("pw-SECRET-hunter2", "tok-SECRET-abc", "rt-SECRET-def", "bearer-SECRET-ghi", "48.85837", "2.294481", "pk-SECRET-jkl"):
        assert secret not in err
    (line,) = json_lines(err)
    assert line["email"] == "alice@example.com"
    assert line["event"] == "login_attempt"


def test_secrets_bound_in_context_are_redacted(capsys, restore_logging):
    configure_logging("unit-svc", "info", "json")
    structlog.contextvars.bind_contextvars(access_token="ctx-SECRET-token", lat=51.5007)
    fresh_logger().bind(current_password="bound-SECRET-pw").warning("context_test")
    err = capsys.readouterr().err
    assert "ctx-SECRET-token" not in err
    assert "51.5007" not in err
    assert "bound-SECRET-pw" not in err
    assert json_lines(err)[0]["event"] == "context_test"


def test_stdlib_logs_use_the_same_json_format(capsys, restore_logging):
    configure_logging("unit-svc", "info", "json")
    logging.getLogger(f"test.stdlib.{uuid.uuid4().hex[:6]}").warning("plain %s", "message")
    (line,) = json_lines(capsys.readouterr().err)
    assert line["event"] == "plain message"
    assert line["level"] == "warning"
    assert line["service"] == "unit-svc"


def test_console_format_also_redacts(capsys, restore_logging):
    configure_logging("unit-svc", "info", "console")
    fresh_logger().info("console_line", password="console-SECRET-pw")
    err = capsys.readouterr().err
    assert "console_line" in err
    assert "console-SECRET-pw" not in err


def test_secrets_nested_in_structures_are_redacted(capsys, restore_logging):
    # A request or a location logged as a dict must not carry its secrets into the log line.
    configure_logging("unit-svc", "info", "json")
    fresh_logger().info(
        "request_received",
        request={"email": "bob@example.com", "password": "nested-SECRET-pw"},
        device={"name": "phone", "latitude": 40.689247},
    )
    err = capsys.readouterr().err
    assert "request_received" in err
    assert "nested-SECRET-pw" not in err
    assert "40.689247" not in err


def test_secret_key_list_covers_the_documented_kinds():
    for key in ("password", "token", "refresh_token", "authorization", "latitude", "longitude", "location"):
        assert key in SECRET_KEYS
