"""What the blob service tells the rest of cumulo on JetStream: file.uploaded when a file is
stored, file.deleted when one goes to the trash; and nothing for uploads that fail."""

from __future__ import annotations

import hashlib
import os

import grpc

from cumulo.events.v1 import events_pb2
from cumulo_devstack.testing import expect_error, read_stream
from cumulo_platform.event_types import event_filter

UPLOADED = event_filter("file.uploaded")
DELETED = event_filter("file.deleted")


def payload_of(envelope: events_pb2.Envelope, message_type):
    message = message_type()
    assert envelope.payload.Unpack(message), envelope.payload.type_url
    return message


def about(account_id: str):
    return lambda envelope: envelope.account_id == account_id


async def test_a_stored_file_is_announced_with_its_digest_size_and_type(alice, infra):
    data = os.urandom(3000)
    node = await alice.put("photo.jpg", data, content_type="image/jpeg")
    found = await read_stream(infra.nats.url, UPLOADED, about(alice.account_id), what="alice's file.uploaded")
    assert len(found) == 1
    envelope = found[0].envelope
    assert (envelope.type, envelope.producer, envelope.account_id) == ("file.uploaded", "blob", alice.account_id)
    assert envelope.event_id and envelope.occurred_at.seconds > 0
    event = payload_of(envelope, events_pb2.FileUploaded)
    assert event.account_id == alice.account_id
    assert event.node_id == node.node_id
    assert event.sha256 == hashlib.sha256(data).hexdigest()
    assert event.size == 3000
    assert event.content_type == "image/jpeg"


async def test_a_trashed_file_is_announced(alice, infra):
    node = await alice.put("bye.txt", b"bye")
    await alice.delete(node.node_id)
    found = await read_stream(infra.nats.url, DELETED, about(alice.account_id), what="alice's file.deleted")
    assert len(found) == 1
    event = payload_of(found[0].envelope, events_pb2.FileDeleted)
    assert (event.account_id, event.node_id) == (alice.account_id, node.node_id)
    assert found[0].envelope.type == "file.deleted"


async def test_each_stored_file_is_announced_once(alice, infra):
    first = await alice.put("one.bin", os.urandom(100))
    second = await alice.put("two.bin", os.urandom(200))
    found = await read_stream(infra.nats.url, UPLOADED, about(alice.account_id), at_least=2, what="two file.uploaded")
    node_ids = sorted(payload_of(d.envelope, events_pb2.FileUploaded).node_id for d in found)
    assert node_ids == sorted([first.node_id, second.node_id])


async def test_a_failed_upload_announces_nothing(alice, bob, infra):
    data = os.urandom(500)
    started = await alice.start("wrong.bin", data, sha256=hashlib.sha256(b"other").hexdigest())
    await expect_error(alice.send(started.upload_id, 0, data), grpc.StatusCode.INVALID_ARGUMENT, reason="SHA256_MISMATCH")
    # A later event of another account marks how far the relay has got.
    marker = await bob.put("marker.bin", b"marker")
    await read_stream(
        infra.nats.url,
        UPLOADED,
        lambda e: payload_of(e, events_pb2.FileUploaded).node_id == marker.node_id,
        what="the marker's file.uploaded",
    )
    found = await read_stream(infra.nats.url, UPLOADED, about(alice.account_id), at_least=0, timeout=1)
    assert found == []
