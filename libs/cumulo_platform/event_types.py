"""Every event type on the bus and the message it carries, once. Producers emit a message and
its type is found here; consumers receive the message already decoded, never unpack by hand.

The subject of an event is "cumulo.events.<type>"; the envelope (events.proto) carries the
id, the account, the time, the producer and the payload."""

from __future__ import annotations

import datetime as dt
from typing import Generic, TypeVar

from google.protobuf import message

from cumulo.events.v1 import events_pb2

EVENT_TYPES: dict[str, type[message.Message]] = {
    # auth
    "account.created": events_pb2.AccountCreated,
    "account.logged_in": events_pb2.LoggedIn,
    "account.contact_changed": events_pb2.ContactChanged,
    "account.status_changed": events_pb2.AccountStatusChanged,
    "account.cancelled": events_pb2.AccountCancelled,
    # every service
    "access.recorded": events_pb2.AccessRecorded,
    # blob
    "file.uploaded": events_pb2.FileUploaded,
    "file.deleted": events_pb2.FileDeleted,
    "link.created": events_pb2.ShareLinkCreated,
    "link.revoked": events_pb2.ShareLinkRevoked,
    # every data service, in the deletion saga
    "purge.completed": events_pb2.PurgeCompleted,
    # lifecycle
    "account.state_changed": events_pb2.AccountStateChanged,
    "purge.requested": events_pb2.PurgeRequested,
    "account.hold_changed": events_pb2.LegalHoldChanged,
    # locator
    "device.found": events_pb2.DeviceFound,
    # moderation (delivered by the lifecycle's notice path)
    "notice.requested": events_pb2.NoticeRequested,
}


M = TypeVar("M", bound=message.Message)


class UnknownEvent(ValueError):
    """An event type or payload that is not in the registry: a bug in the producer."""


def register(event_type: str, cls: type[message.Message]) -> None:
    """Adds an event type (tests use types of their own, so that their subjects are theirs)."""
    known = EVENT_TYPES.setdefault(event_type, cls)
    if known is not cls:
        raise UnknownEvent(f"{event_type!r} already carries {known.DESCRIPTOR.full_name}")


def check_type(event_type: str, payload: message.Message) -> None:
    expected = EVENT_TYPES.get(event_type)
    if expected is None:
        raise UnknownEvent(f"{event_type!r} is not an event type")
    if payload.DESCRIPTOR.full_name != expected.DESCRIPTOR.full_name:
        raise UnknownEvent(f"{event_type!r} carries {expected.DESCRIPTOR.full_name}, not {payload.DESCRIPTOR.full_name}")


class Event(Generic[M]):
    """An event as a consumer receives it: the envelope's facts and the decoded message. Cheap
    to make (a consumer of access events makes thousands a second): the envelope's fields are
    read when asked for."""

    __slots__ = ("envelope", "message")

    def __init__(self, envelope: events_pb2.Envelope, message: M) -> None:
        self.envelope = envelope
        self.message = message

    @property
    def event_id(self) -> str:
        return self.envelope.event_id

    @property
    def type(self) -> str:
        return self.envelope.type

    @property
    def account_id(self) -> str:
        return self.envelope.account_id

    @property
    def producer(self) -> str:
        return self.envelope.producer

    @property
    def occurred_at(self) -> dt.datetime:
        return self.envelope.occurred_at.ToDatetime(dt.UTC)


def decode(envelope: events_pb2.Envelope) -> Event[message.Message]:
    """The envelope's payload as its registered message; UnknownEvent (or DecodeError) when it
    is not what its type says."""
    cls = EVENT_TYPES.get(envelope.type)
    if cls is None:
        raise UnknownEvent(f"{envelope.type!r} is not an event type")
    payload = cls()
    if not envelope.payload.Unpack(payload):
        raise UnknownEvent(f"{envelope.type!r} does not carry {cls.DESCRIPTOR.full_name}")
    return Event(envelope, payload)
