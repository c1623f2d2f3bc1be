"""Every event type on the bus and the message it carries, once. Producers emit a message and
its type is found here; consumers receive the message already decoded, never unpack by hand.

The subject of an event is "cumulo.events.<producer>.<type>" (`event_subject`): NATS lets each
service publish on its own subjects only (`cumulo_platform.bus_access`), and a consumer takes an
event only when its envelope names the producer its subject names and that producer may produce
the type (`EVENT_PRODUCERS`). The envelope (events.proto) carries the id, the account, the
time, the producer and the payload."""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, TypeVar

from google.protobuf import message

from cumulo.events.v1 import events_pb2

EVENT_TYPES: dict[str, type[message.Message]] = {
    # auth
    "account.created": events_pb2.AccountCreated,
    "account.logged_in": events_pb2.LoggedIn,
    "account.contact_changed": events_pb2.ContactChanged,
    "account.status_changed": events_pb2.AccountStatusChanged,
    "account.cancelled": events_pb2.AccountCancelled,
    "tokens.revoked": events_pb2.TokensRevoked,
    "guardian.revoked": events_pb2.GuardianRevoked,
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


_DATA_SERVICES = frozenset({"auth", "blob", "sync", "locator", "moderation"})
_EVERY_SERVICE = _DATA_SERVICES | {"lifecycle"}

# Who may produce each type; a type not listed here (the tests' own) may come from anyone.
EVENT_PRODUCERS: dict[str, frozenset[str]] = {
    **{t: frozenset({"auth"}) for t in ("account.created", "account.logged_in", "account.contact_changed", "account.status_changed", "account.cancelled", "tokens.revoked", "guardian.revoked")},
    "access.recorded": _EVERY_SERVICE,
    **{t: frozenset({"blob"}) for t in ("file.uploaded", "file.deleted", "link.created", "link.revoked")},
    "purge.completed": _DATA_SERVICES,
    **{t: frozenset({"lifecycle"}) for t in ("account.state_changed", "purge.requested", "account.hold_changed")},
    "device.found": frozenset({"locator"}),
    # moderation's messages; auth's new-session and blob's shared-with-you notices
    "notice.requested": frozenset({"moderation", "auth", "blob"}),
}

SUBJECT_PREFIX = "cumulo.events."


def event_subject(producer: str, event_type: str) -> str:
    """Where `producer` publishes an event of `event_type`."""
    return f"{SUBJECT_PREFIX}{producer}.{event_type}"


def event_filter(event_type: str) -> str:
    """The subjects of `event_type`, whoever produced them (a consumer's filter)."""
    return f"{SUBJECT_PREFIX}*.{event_type}"


def forgery(subject: str, envelope: events_pb2.Envelope) -> str | None:
    """Why an event that came on `subject` is not what it claims to be; None when it is."""
    producer = subject.removeprefix(SUBJECT_PREFIX).split(".", 1)[0]
    if envelope.producer != producer:
        return f"its envelope names the producer {envelope.producer!r}, its subject {producer!r}"
    allowed = EVENT_PRODUCERS.get(envelope.type)
    if allowed is not None and producer not in allowed:
        return f"{producer!r} does not produce {envelope.type!r} events"
    return None


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

    __slots__ = ("envelope", "message", "span")

    def __init__(self, envelope: events_pb2.Envelope, message: M) -> None:
        self.envelope = envelope
        self.message = message
        # The span a batch consumer applies it under (cumulo_platform.tracing), None untraced:
        # what a handler does for this event alone goes under it (`tracing.within`).
        self.span: Any = None

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
