"""Values no other test uses: e-mail addresses, phone numbers, event types; and a real picture."""

from __future__ import annotations

import secrets
import struct
import uuid
import zlib

from google.protobuf.message import Message

from cumulo.events.v1 import events_pb2
from cumulo_platform.event_types import register as register_event_type


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def unique_phone() -> str:
    """A Chinese mobile number in E.164 form."""
    return "+8613" + "".join(secrets.choice("0123456789") for _ in range(9))


def unique_event_type(message_class: type[Message] = events_pb2.AccountCancelled) -> str:
    """An event type (and so a JetStream subject) of the test's own, registered as carrying
    `message_class`."""
    event_type = f"test.{uuid.uuid4().hex[:12]}"
    register_event_type(event_type, message_class)
    return event_type


def png(width: int, height: int) -> bytes:
    """A real PNG (a colour gradient), written by hand: no imaging library needed."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 128)) for x in range(width)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
