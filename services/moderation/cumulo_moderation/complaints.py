"""Complaint intake: anyone with a registered client app (signed in, or giving a contact
address) about a share link, a file or an account. Rate-limited per reporter and per network
address; the complaint joins the target's open case or opens one."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import uuid

import sqlalchemy as sa

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_moderation import audit
from cumulo_moderation.adapters.services import Content, Services
from cumulo_moderation.adapters.tables import complaints
from cumulo_moderation.cases import Cases
from cumulo_moderation.config import ModerationSettings
from cumulo_moderation.counters import within_limit
from cumulo_moderation.domain import rules
from cumulo_moderation.domain.rules import receipt_hash
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import InvalidArgument, NotFound
from cumulo_platform.logging import get_logger

log = get_logger(__name__)


@dataclasses.dataclass(frozen=True)
class Filed:
    complaint_id: uuid.UUID
    case_id: uuid.UUID
    receipt: str


def _digest(value: str) -> str:
    """Counters key on digests: the table never holds an address or a contact."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]


class Complaints:
    def __init__(self, db: Database, settings: ModerationSettings, clock: Clock, services: Services, cases: Cases) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.services = services
        self.cases = cases

    async def _resolve(self, target: rules.Target) -> tuple[str, Content | None]:
        """(the account concerned, the content if the target is a link or a file)."""
        try:
            if target.kind == "link":
                content = await self.services.find_content(link_token=target.value)
                return content.account_id, content
            if target.kind == "file":
                content = await self.services.find_content(node_id=target.value)
                return content.account_id, content
            try:
                account_id = str(uuid.UUID(target.value))
            except ValueError:
                return await self.services.find_account(target.value), None
            await self.services.account_exists(account_id)
            return account_id, None
        except NotFound as err:
            raise NotFound(f"target: {err.message}", reason=err.reason) from None

    async def file(self, request: pb.FileComplaintRequest, *, reporter: str | None, client_id: str, address: str) -> Filed:
        complaint = rules.check_complaint(request, signed_in=reporter is not None)
        now = self.clock.now()
        window = self.settings.complaint_window
        # Counted before anything else is looked up: a flood costs two small writes each.
        async with self.db.unit_of_work() as uow:
            who = f"reporter:account:{reporter}" if reporter else f"reporter:contact:{_digest(complaint.contact_address)}"
            await within_limit(uow, who, self.settings.complaints_per_reporter, window, now, "complaints from you")
            await within_limit(uow, f"address:{_digest(address)}", self.settings.complaints_per_address, window, now, "complaints from your network address")
            await uow.commit()
        account_id, content = await self._resolve(complaint.target)
        if content is not None and content.kind != "file" and complaint.target.kind == "file":
            raise InvalidArgument("target.node_id", "names a folder; report the file, or the share link to the folder")
        receipt = secrets.token_urlsafe(24)
        complaint_id = uuid.uuid4()
        actor = f"user:{reporter}" if reporter else "anonymous"
        target_kind = "account" if content is None else complaint.target.kind
        node_id = content.node_id if content else None
        node_kind = content.kind if content else ""
        link_id = (content.link_id or None) if content else None

        async with self.db.unit_of_work() as uow:
            async def filed(case_id: uuid.UUID) -> None:
                """The complaint, recorded before the case it opens (if it opens one)."""
                await uow.execute(
                    sa.insert(complaints).values(
                        complaint_id=complaint_id, case_id=case_id, category=complaint.category, description=complaint.description,
                        reporter_account_id=uuid.UUID(reporter) if reporter else None, client_id=client_id,
                        contact_address=complaint.contact_address, copyright=complaint.copyright, receipt_hash=receipt_hash(receipt),
                        created_at=now,
                    )
                )
                await audit.record(
                    uow, at=now, actor=actor, action="complaint.filed", account_id=account_id, case_id=case_id,
                    target=audit.target(target_kind, account_id=account_id, node_id=node_id, node_kind=node_kind, link_id=link_id),
                    reason=complaint.category,
                )

            case_id = await self.cases.open(
                uow, kind="complaint", category=complaint.category, target_kind=target_kind, account_id=account_id, node_id=node_id,
                node_kind=node_kind, link_id=link_id, sha256=content.sha256 if content else "", actor=actor,
                reason=f"{complaint.category} complaint", cause=filed,
            )
            await uow.commit()
        log.info("complaint_filed", complaint_id=str(complaint_id), case_id=str(case_id), category=complaint.category)
        return Filed(complaint_id, case_id, receipt)
