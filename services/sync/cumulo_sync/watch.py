"""Watch: which zones changed, told to a user's devices within a second. A push announces
its zone on a NATS core subject (per account) after it commits; every replica hands each
announcement to the Watch streams of that account it serves (cumulo_platform.fanout)."""

from __future__ import annotations

import dataclasses
import json

from cumulo_platform.events import Nats
from cumulo_platform.fanout import Fanout

SUBJECT = "cumulo.sync.changed"


@dataclasses.dataclass(frozen=True)
class Change:
    zone: str
    token: str
    device: str

    def encode(self) -> bytes:
        return json.dumps({"zone": self.zone, "token": self.token, "device": self.device}).encode()

    @classmethod
    def decode(cls, data: bytes) -> Change | None:
        try:
            body = json.loads(data)
            return cls(zone=str(body["zone"]), token=str(body["token"]), device=str(body.get("device", "")))
        except (ValueError, KeyError, TypeError):
            return None


def watchers(nats: Nats) -> Fanout:
    return Fanout(nats, SUBJECT)
