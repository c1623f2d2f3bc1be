"""The platform's rules for input every service takes: page tokens (bounded, decoded strictly,
refused as INVALID_ARGUMENT naming the field), the rule of names (nothing invisible, nothing
that turns the text around), and the largest message a service reads (a setting, which the
gRPC server applies)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cumulo_platform.errors import InvalidArgument
from cumulo_platform.paging import MAX_TOKEN_CHARS, decode_token, encode_token, token_time
from cumulo_platform.runtime import ServiceRuntime
from cumulo_platform.settings import DEFAULT_GRPC_MAX_RECEIVE_BYTES, Env, PlatformSettings, SettingsError
from cumulo_platform.text import check_text, check_visible


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def crafted(values: Any) -> str:
    return b64(json.dumps(values).encode())


BAD_TOKENS = {
    "too-long": "A" * (MAX_TOKEN_CHARS + 4),
    "one-megabyte": "A" * (1024 * 1024),
    "not-base64": "not a token!",
    "base64-with-stray-characters": encode_token(["a"])[:4] + "*" + encode_token(["a"])[4:],
    "non-ascii": "\u00e9\u00e9\u00e9\u00e9",
    "not-utf8": b64(b"\xff\xfe"),
    "not-json": b64(b"{"),
    "nested-deeper-than-the-parser-goes": b64(b"[" * 2000 + b"]" * 2000),
    "object": crafted({"a": 1}),
    "wrong-count": crafted(["a", 1, "b"]),
    "bool-for-int": crafted(["a", True]),
    "int-for-bool": crafted([1, 1]),
    "float-for-int": crafted(["a", 1.0]),
    "past-64-bits": crafted(["a", 2**63]),
    "below-64-bits": crafted(["a", -(2**63) - 1]),
    "lone-surrogate": crafted(["\udc80", 1]),
    "nul": crafted(["a\x00", 1]),
}


@pytest.mark.parametrize("token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_a_token_no_service_gave_is_invalid_argument_naming_the_field(token):
    with pytest.raises(InvalidArgument) as caught:
        decode_token(token, str, int, field="change_token", what="a change token")
    assert caught.value.field == "change_token"
    assert caught.value.message.startswith("change_token: is not a change token")


@pytest.mark.parametrize(
    "values", [["a", 1], ["", -(2**63)], ["文档/Résumé.txt" * 50, 2**63 - 1], [True, False]], ids=["plain", "edges", "long-utf8", "bools"]
)
def test_a_token_round_trips(values):
    shape = tuple(type(v) for v in values)
    token = encode_token(values)
    assert len(token) <= MAX_TOKEN_CHARS
    assert decode_token(token, *shape) == values


def test_the_longest_backup_path_fits_in_a_token():
    """2 KiB of UTF-8 (the longest backup path) as a page token stays within the bound."""
    assert len(encode_token(["\U0001f600" * 512])) <= MAX_TOKEN_CHARS
    assert len(encode_token(["中" * 682])) <= MAX_TOKEN_CHARS


def test_a_token_written_with_ascii_escapes_still_decodes():
    """Tokens given out before UTF-8 text went into them."""
    assert decode_token(crafted(["文档"]), str) == ["文档"]


@pytest.mark.parametrize(
    "text",
    ["2026-01-01T00:00:00", "yesterday", "", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-02-30T00:00:00+00:00"],
    ids=["no-offset", "words", "empty", "before-year-one-in-utc", "after-9999-in-utc", "no-such-day"],
)
def test_a_token_time_must_be_a_time_with_its_offset(text):
    with pytest.raises(InvalidArgument) as caught:
        token_time(text)
    assert caught.value.field == "page_token"


def test_a_token_time_comes_back_in_utc():
    at = dt.datetime(2026, 12, 4, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert token_time(at.isoformat()) == at
    assert token_time(at.isoformat()).tzinfo == dt.UTC


# --- the rule of names --------------------------------------------------------------------------------

INVISIBLE = {
    "rlo": "a\u202eb", "lro": "a\u202db", "rle": "a\u202bb", "lre": "a\u202ab", "pdf": "a\u202cb",
    "lri": "a\u2066b", "rli": "a\u2067b", "fsi": "a\u2068b", "pdi": "a\u2069b",
    "zwsp": "a\u200bb", "zwnj-latin": "a\u200cb", "zwj-latin": "a\u200db", "lrm": "a\u200eb", "rlm": "a\u200fb",
    "bom": "\ufeffab", "word-joiner": "a\u2060b", "soft-hyphen": "a\u00adb", "mongolian-vowel-separator": "a\u180eb",
    "tag": "a\U000e0041b", "line-separator": "a\u2028b", "hangul-filler": "a\u3164b",
    "zwj-at-the-start": "\u200d\U0001f308", "zwj-at-the-end": "\U0001f308\u200d", "zwnj-after-arabic-before-latin": "\u0645\u200cb",
}


@pytest.mark.parametrize("text", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_check_visible_refuses_what_does_not_show(text):
    with pytest.raises(InvalidArgument) as caught:
        check_visible(text, "name", "a device")
    assert caught.value.reason == "INVISIBLE_CHARACTER"
    assert caught.value.message.startswith("name: a device must not contain invisible or text-direction characters (U+")


def test_check_visible_refuses_control_characters_as_such():
    with pytest.raises(InvalidArgument) as caught:
        check_visible("a\x1bb", "name")
    assert caught.value.message == "name: must not contain control characters"


def test_check_text_applies_the_rule_of_names_only_to_names():
    assert check_text("\u05e9\u05dc\u05d5\u05dd \u200fok", "message", "the message", 100) == "\u05e9\u05dc\u05d5\u05dd \u200fok"
    with pytest.raises(InvalidArgument):
        check_text("phone\u202e", "name", "it", 100, name=True)


# --- the largest message a service reads -------------------------------------------------------------


def platform(**environ: str) -> PlatformSettings:
    return PlatformSettings.from_env("sync", Env("sync", {"DATABASE_URL": "postgresql+asyncpg://x/y", **environ}))


def test_the_receive_limit_is_a_setting_with_a_deliberate_default():
    assert platform().grpc_max_receive_bytes == DEFAULT_GRPC_MAX_RECEIVE_BYTES == 16 * 1024 * 1024
    assert platform(CUMULO_SYNC_GRPC_MAX_RECEIVE_BYTES="1048576").grpc_max_receive_bytes == 1024 * 1024
    for bad in ("1", str(1024 * 1024 * 1024)):
        with pytest.raises(SettingsError, match="CUMULO_GRPC_MAX_RECEIVE_BYTES"):
            platform(CUMULO_GRPC_MAX_RECEIVE_BYTES=bad)


async def test_a_server_refuses_a_message_over_its_receive_limit_before_it_is_read():
    runtime = ServiceRuntime(name="bounds-test", host="127.0.0.1", port=0, services=[], max_receive_bytes=64 * 1024)
    port = await runtime.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            assert (await stub.Check(health_pb2.HealthCheckRequest(), timeout=10)).status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Check(health_pb2.HealthCheckRequest(service="x" * 70_000), timeout=10)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await runtime.stop()
