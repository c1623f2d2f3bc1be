"""Messages auth has sent: the lifecycle delivers every message (e-mail, SMS), a contact's
verification code among them, at once through its internal API."""

from __future__ import annotations

from cumulo.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from cumulo_auth.contacts import SendCode
from cumulo_platform.remote import Remote


def remote_code_sender(lifecycle: Remote[lifecycle_pb2_grpc.LifecycleInternalServiceStub]) -> SendCode:
    async def send(account_id: str, channel: str, destination: str, code: str, minutes: int, locale: str, purpose: str) -> None:
        await lifecycle.call(
            lifecycle.stub.SendVerificationCode,
            lifecycle_pb2.SendVerificationCodeRequest(
                account_id=account_id, channel=channel, destination=destination, code=code, valid_minutes=minutes, locale=locale,
                purpose=purpose,
            ),
            field="channel",
        )

    return send
