"""Take-out: the owner's copy of everything their account holds, in tar archives in the object
store, downloaded by signed URLs until they expire.

Asking (StartExport) queues an export; one per account at a time, a few a day. A job on any
replica takes it (SKIP LOCKED, with a lease a crashed replica's export is taken over after),
and works in three steps, each streaming (memory stays flat whatever the account's size):

1. the parts: each data service's JSON lines (auth, lifecycle, sync, locator, through
   TakeoutInternalService.ExportPart) and blob's own (the files' index, shares, purchases) are
   staged as objects under the export's prefix, so their sizes are known for the tar headers;
2. the archives: a README, the staged parts, then every file's bytes as they are, read from the
   store and written into multipart uploads of `part_size`, split at `archive_bytes`; a file
   withheld by a moderator's block is left out and marked so in the index (content that is
   unlawful is not handed out again);
3. the staged parts are deleted, the export is ready, and the owner is told (the lifecycle's
   notice path) with a link to the console's take-out page, which signs download URLs for the
   signed-in owner: a link in a mailbox never gives the archive itself away.

Archives are deleted when they expire (`expiry` after they are ready) and with the account."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from cumulo.events.v1 import events_pb2
from cumulo.takeout.v1 import takeout_pb2, takeout_pb2_grpc
from cumulo_blob.adapters.tables import contents, exports, nodes, purchases, share_links, user_shares
from cumulo_blob.config import BlobSettings
from cumulo_blob.domain import tar
from cumulo_blob.enforcement import Enforcement
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import FailedPrecondition, NotFound, ResourceExhausted, parse_id
from cumulo_platform.evidence import json_line, paged
from cumulo_platform.logging import get_logger
from cumulo_platform.remote import Remote
from cumulo_platform.storage import ObjectWriter, Storage
from cumulo_platform.takeout import exported_columns, safe_name

log = get_logger(__name__)

ACTIVE = ("queued", "running")
FILES_PAGE = 200
LEASE = dt.timedelta(minutes=2)
ATTEMPTS = 3  # an export that failed this often is given up (FAILED), the owner may ask again
README = """cumulo take-out
===============

Everything your cumulo account held when this archive was made (see account/account.jsonl):

  files/        your files, as you stored them, in their folders
  trash/        files in your trash (the name ends with a short id: the trash may hold
                several files of one name)
  files.jsonl   one line per file: its path, size, SHA-256, dates, and `withheld` for a file
                left out because a moderator blocked its content
  shares.jsonl  your share links (never their secret part) and what you shared with people
  purchases.jsonl  storage plans you bought
  sync/         data your apps synced: sync/zones.jsonl names each zone, and
                sync/zones/<zone id>.jsonl holds its records (payloads in base64)
  backups/      your device backups: backups/backups.jsonl, and the manifest of each backup
                (the files it holds) in backups/<backup id>.jsonl
  devices/      your devices, their location history and the commands sent to them
  account/      your account: contacts, sessions, terms accepted, two-step sign-in, and its
                lifecycle (states, transitions, notices sent)

Every .jsonl file is JSON lines (one JSON object per line, UTF-8). A large account comes in
several archives: extract them all into one folder.

cumulo 数据导出：以上文件为您的 cumulo 账号在导出时保存的全部内容（文件、同步数据、备份清单、
设备位置记录和账号资料）。.jsonl 文件每行一个 JSON 对象（UTF-8）。数据较多时会分为多个压缩包，
请将它们解压到同一个文件夹中。
"""


class ExportLost(Exception):
    """Another replica took the export over (this one's lease ran out), or the account went."""


@dataclasses.dataclass
class Staged:
    name: str  # in the archive, under the top folder
    key: str
    size: int


@dataclasses.dataclass
class Archive:
    name: str
    key: str
    writer: ObjectWriter | None = None
    size: int = 0
    sha256: str = ""


def _prefix(account: uuid.UUID, export: uuid.UUID) -> str:
    return f"takeout/{account}/{export}/"


def _try_prefix(row: Any) -> str:
    """Where one try of an export writes: a try another replica took over never touches the
    objects of the try after it."""
    return f"{_prefix(row.account_id, row.export_id)}{row.attempts}/"


class Takeout:
    def __init__(
        self, *, db: Database, clock: Clock, storage: Storage, settings: BlobSettings, enforcement: Enforcement,
        sources: dict[str, Remote[takeout_pb2_grpc.TakeoutInternalServiceStub]],
    ) -> None:
        self.db = db
        self.clock = clock
        self.storage = storage
        self.settings = settings
        self.enforcement = enforcement
        self.sources = sources

    # -- the owner's requests -----------------------------------------------------------------

    async def start(self, account: uuid.UUID) -> Any:
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            recent = (
                await uow.execute(
                    sa.select(sa.func.count()).select_from(exports)
                    .where(exports.c.account_id == account, exports.c.requested_at > now - dt.timedelta(days=1))
                )
            ).scalar_one()
            if recent >= self.settings.takeout_per_day:
                raise ResourceExhausted(
                    f"at most {self.settings.takeout_per_day} exports a day; try again tomorrow", reason="EXPORT_LIMIT_REACHED"
                )
            row = (
                await uow.execute(
                    insert(exports)
                    .values(account_id=account, export_id=uuid.uuid4(), state="queued", requested_at=now)
                    .on_conflict_do_nothing(index_elements=[exports.c.account_id], index_where=sa.text("state IN ('queued', 'running')"))
                    .returning(*exports.c)
                )
            ).first()
            if row is None:
                raise FailedPrecondition("an export of this account is already under way; wait for it", reason="EXPORT_IN_PROGRESS")
            await uow.commit()
        log.info("export_requested", account_id=str(account), export_id=str(row.export_id))
        return row

    async def get(self, account: uuid.UUID, export_id: str) -> Any:
        export = parse_id(export_id, "export_id", "an export id (UUID)")
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(exports).where(exports.c.account_id == account, exports.c.export_id == export))).first()
        if row is None:
            raise NotFound("no such export of this account", reason="EXPORT_NOT_FOUND")
        return row

    async def exports_of(self, account: uuid.UUID) -> list[Any]:
        async with self.db.read() as conn:
            query = sa.select(exports).where(exports.c.account_id == account).order_by(exports.c.requested_at.desc()).limit(50)
            return list((await conn.execute(query)).all())

    async def download_urls(self, row: Any) -> list[tuple[dict[str, Any], str, dt.datetime]]:
        """(archive, signed URL, until when) for each archive of a ready export."""
        if row.state != "ready":
            return []
        if not self.settings.download_url_base:
            raise FailedPrecondition("signed download URLs are not set up on this server", reason="DOWNLOAD_URLS_UNAVAILABLE")
        seconds = int(self.settings.download_url_ttl.total_seconds())
        until = self.clock.now() + dt.timedelta(seconds=seconds)
        return [
            (a, await self.storage.presigned_get(a["key"], public_endpoint=self.settings.download_url_base, expires_in=seconds), until)
            for a in row.archives
        ]

    # -- the job --------------------------------------------------------------------------------

    async def run_due(self) -> int:
        """Works through the exports waiting (one at a time); answers how many were done."""
        done = 0
        while (claimed := await self._claim()) is not None:
            await self._run(claimed)
            done += 1
        return done

    async def _claim(self) -> Any:
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            row = (
                await uow.execute(
                    sa.select(exports)
                    .where(
                        exports.c.state.in_(ACTIVE),
                        sa.or_(exports.c.lease_until.is_(None), exports.c.lease_until < now),
                    )
                    .order_by(exports.c.requested_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return None
            if row.attempts >= ATTEMPTS:
                # Its tries died with their processes (their `_failed` never ran): given up.
                await uow.execute(
                    sa.update(exports)
                    .where(exports.c.account_id == row.account_id, exports.c.export_id == row.export_id)
                    .values(state="failed", finished_at=now, lease_until=None, failure="the export could not be completed; please ask for a new one")
                )
                await uow.commit()
                log.warning("export_given_up", account_id=str(row.account_id), export_id=str(row.export_id), attempts=row.attempts)
                return await self._claim()
            claimed = (
                await uow.execute(
                    sa.update(exports)
                    .where(exports.c.account_id == row.account_id, exports.c.export_id == row.export_id)
                    .values(
                        state="running", started_at=now, lease_until=now + LEASE, attempts=exports.c.attempts + 1,
                        files_done=0, bytes_written=0,
                    )
                    .returning(*exports.c)
                )
            ).one()
            await uow.commit()
        return claimed

    async def _run(self, row: Any) -> None:
        account, export = row.account_id, row.export_id
        prefix = _try_prefix(row)
        log.info("export_started", account_id=str(account), export_id=str(export), attempt=row.attempts)
        heartbeat = asyncio.create_task(self._heartbeat(row))
        try:
            # Tries before this one may have left objects (they crashed): theirs go.
            for earlier in range(1, row.attempts):
                await self.storage.delete_prefix(f"{_prefix(account, export)}{earlier}/")
            staged, files_total = await self._stage(row, prefix + "staging/")
            await self._progress(row, files_total=files_total)
            archives = await self._write_archives(row, prefix, staged)
            await self.storage.delete_prefix(prefix + "staging/")
            await self._finish(row, archives)
        except ExportLost:
            # Taken over, or the account's deletion took the export: what this try wrote goes.
            log.warning("export_lost", account_id=str(account), export_id=str(export), attempt=row.attempts)
            await self._forget_try(row)
        except Exception as exc:
            log.exception("export_failed", account_id=str(account), export_id=str(export), attempt=row.attempts)
            await self._failed(row, type(exc).__name__)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _heartbeat(self, row: Any) -> None:
        """Renews the lease while the try works (a long part can take minutes). Once the export
        is no longer this try's it stops; the work finds out at its next step (ExportLost)."""
        while True:
            await asyncio.sleep(LEASE.total_seconds() / 4)
            try:
                await self._progress(row)
            except ExportLost:
                return
            except Exception:
                log.warning("export_lease_not_renewed", export_id=str(row.export_id))

    async def _forget_try(self, row: Any) -> None:
        try:
            await self.storage.delete_prefix(_try_prefix(row))
        except Exception:
            log.warning("export_cleanup_failed", account_id=str(row.account_id), export_id=str(row.export_id))

    async def _stage(self, row: Any, staging: str) -> tuple[list[Staged], int]:
        staged: list[Staged] = []
        for name, rows in self._own_parts(row.account_id):
            staged.append(await self._stage_rows(staging, name, rows))
        files_total = await self._stage_files_index(row.account_id, staging, staged)
        for service, remote in self.sources.items():
            writer: ObjectWriter | None = None
            current = ""
            stream = remote.stream(remote.stub.ExportPart, takeout_pb2.ExportPartRequest(account_id=str(row.account_id)))
            try:
                async for message in stream:
                    if message.name != current:
                        if writer is not None:
                            await writer.finish()
                            staged.append(Staged(current, writer.key, writer.size))
                        current = safe_name(message.name)
                        writer = await self.storage.new_writer(staging + current, part_size=self.settings.part_size)
                    assert writer is not None
                    await writer.write(message.data)
                if writer is not None:
                    await writer.finish()
                    staged.append(Staged(current, writer.key, writer.size))
                    writer = None
            finally:
                if writer is not None:
                    await writer.abort()
            log.info("export_part_staged", account_id=str(row.account_id), service=service)
            await self._progress(row)  # the lease renewed: a long history takes a while
        return staged, files_total

    def _own_parts(self, account: uuid.UUID) -> list[tuple[str, AsyncIterator[dict[str, Any]]]]:
        links = sa.select(*exported_columns(share_links, leave_out=("failed_passwords", "locked_until"))).where(share_links.c.account_id == account)
        given = sa.select(*exported_columns(user_shares)).where(user_shares.c.owner_id == account)
        bought = sa.select(*exported_columns(purchases, leave_out=("payment_reference",))).where(purchases.c.account_id == account)
        return [
            ("shares.jsonl", _chain(
                paged(self.db, links, [share_links.c.link_id], kind="share_link"),
                paged(self.db, given, [user_shares.c.share_id], kind="shared_with_person"),
            )),
            ("purchases.jsonl", paged(self.db, bought, [purchases.c.purchase_id], kind="purchase")),
        ]

    async def _stage_rows(self, staging: str, name: str, rows: AsyncIterator[dict[str, Any]]) -> Staged:
        async with self.storage.writer(staging + name, part_size=self.settings.part_size) as writer:
            async for item in rows:
                await writer.write(json_line(item))
        return Staged(name, writer.key, writer.size)

    async def _stage_files_index(self, account: uuid.UUID, staging: str, staged: list[Staged]) -> int:
        """files.jsonl; answers how many files go into the archives."""
        count = 0
        async with self.storage.writer(staging + "files.jsonl", part_size=self.settings.part_size) as writer:
            async for page in self._file_pages(account):
                for file in page:
                    count += 0 if file["withheld"] else 1
                    await writer.write(json_line({k: v for k, v in file.items() if k != "s3_key"}))
        staged.append(Staged("files.jsonl", writer.key, writer.size))
        return count

    async def _file_pages(self, account: uuid.UUID) -> AsyncIterator[list[dict[str, Any]]]:
        """The account's files a page at a time (by id), each with its path, where it goes in
        the archive ("" when withheld) and its stored content's key."""
        after: uuid.UUID | None = None
        while True:
            query = (
                sa.select(nodes, contents.c.s3_key)
                .join(contents, sa.and_(contents.c.account_id == nodes.c.account_id, contents.c.sha256 == nodes.c.sha256))
                .where(nodes.c.account_id == account, nodes.c.kind == "file")
                .order_by(nodes.c.node_id)
                .limit(FILES_PAGE)
            )
            if after is not None:
                query = query.where(nodes.c.node_id > after)
            async with self.db.read() as conn:
                rows = list((await conn.execute(query)).all())
            if not rows:
                return
            located = {r.node_id: r for r in await self.enforcement.located(str(account), [str(r.node_id) for r in rows])}
            page = []
            for row in rows:
                where = located.get(row.node_id)
                if where is None:  # deleted meanwhile
                    continue
                segments = where.path.strip("/").split("/")
                if where.in_trash:
                    stem, dot, ext = segments[-1].rpartition(".")
                    short = str(row.node_id)[:8]
                    segments[-1] = f"{stem} ({short}).{ext}" if dot and stem else f"{segments[-1]} ({short})"
                member = "" if row.blocked else tar.member_name("trash" if where.in_trash else "files", *segments)
                page.append({
                    "kind": "file", "node_id": row.node_id, "path": where.path, "in_trash": where.in_trash, "size": row.size,
                    "sha256": row.sha256, "content_type": row.content_type, "created_at": row.created_at,
                    "modified_at": row.modified_at, "withheld": row.blocked, "in_archive": member, "s3_key": row.s3_key,
                })
            yield page
            if len(rows) < FILES_PAGE:
                return
            after = rows[-1].node_id

    async def _write_archives(self, row: Any, prefix: str, staged: Sequence[Staged]) -> list[Archive]:
        day = row.requested_at.astimezone(dt.UTC).strftime("%Y%m%d")
        top = f"cumulo-takeout-{day}"
        archives: list[Archive] = []
        files_done = 0
        written_before = 0  # bytes of the archives already finished

        async def archive_for(size: int) -> Archive:
            """The archive the next entry of `size` bytes goes into: a new one when it would
            pass the limit (but never an empty one left behind)."""
            if archives and archives[-1].writer is not None:
                current = archives[-1]
                assert current.writer is not None
                if current.writer.size == 0 or current.writer.size + size + len(tar.END) <= self.settings.takeout_archive_bytes:
                    return current
                await close(current)
            name = f"{top}-{len(archives) + 1:03d}.tar"
            key = prefix + name
            archive = Archive(name, key, await self.storage.new_writer(key, part_size=self.settings.part_size))
            archives.append(archive)
            return archive

        async def close(archive: Archive) -> None:
            nonlocal written_before
            assert archive.writer is not None
            await archive.writer.write(tar.END)
            await archive.writer.finish()
            archive.size, archive.sha256 = archive.writer.size, archive.writer.sha256
            written_before += archive.size
            archive.writer = None

        async def add(name: str, size: int, modified: dt.datetime, body: AsyncIterator[bytes]) -> None:
            member = f"{top}/{name}"
            archive = await archive_for(tar.entry_size(member, size, modified))
            writer = archive.writer
            assert writer is not None
            await writer.write(tar.header(member, size, modified))
            parts_before = writer.parts_sent
            got = 0
            async for chunk in body:
                got += len(chunk)
                await writer.write(chunk)
                if writer.parts_sent != parts_before:  # a part went out: tell the owner how far
                    parts_before = writer.parts_sent
                    await self._progress(row, files_done=files_done, bytes_written=written_before + writer.size)
            if got != size:
                raise RuntimeError(f"{name}: the store gave {got} bytes of {size}")
            await writer.write(tar.padding(size))

        try:
            now = self.clock.now()
            readme = README.encode()
            await add("README.txt", len(readme), now, _once(readme))
            for part in staged:
                await add(part.name, part.size, now, self.storage.read(part.key, 0, part.size))
            async for page in self._file_pages(row.account_id):
                for file in page:
                    if file["withheld"]:
                        continue
                    await add(file["in_archive"], file["size"], file["modified_at"], self.storage.read(file["s3_key"], 0, file["size"]))
                    files_done += 1
                await self._progress(row, files_done=files_done, bytes_written=written_before + _open_size(archives))
            if archives and archives[-1].writer is not None:
                await close(archives[-1])
        except BaseException:
            for archive in archives:
                if archive.writer is not None:
                    await archive.writer.abort()
            raise
        await self._progress(row, files_done=files_done, bytes_written=written_before)
        return archives

    async def _progress(self, row: Any, **values: int) -> None:
        """Progress, and the lease renewed; ExportLost if the export is no longer this try's."""
        async with self.db.unit_of_work() as uow:
            result = await uow.execute(sa.update(exports).where(*_this_try(row)).values(lease_until=self.clock.now() + LEASE, **values))
            if not result.rowcount:
                raise ExportLost(str(row.export_id))
            await uow.commit()

    async def _finish(self, row: Any, archives: list[Archive]) -> None:
        now = self.clock.now()
        expires = now + self.settings.takeout_expiry
        kept = [{"name": a.name, "key": a.key, "size": a.size, "sha256": a.sha256} for a in archives]
        async with self.db.unit_of_work() as uow:
            result = await uow.execute(
                sa.update(exports).where(*_this_try(row)).values(state="ready", finished_at=now, expires_at=expires, lease_until=None, archives=kept)
            )
            if not result.rowcount:
                raise ExportLost(str(row.export_id))
            uow.emit(
                "notice.requested",
                events_pb2.NoticeRequested(
                    account_id=str(row.account_id), reference=f"export:{row.export_id}", kind="export_ready",
                    values={
                        "at": now.isoformat(), "expires_at": expires.isoformat(), "size": str(sum(a.size for a in archives)),
                        "link": f"{self.settings.download_url_base}/takeout" if self.settings.download_url_base else "",
                    },
                ),
                account_id=str(row.account_id),
            )
            await uow.commit()
        log.info("export_ready", account_id=str(row.account_id), export_id=str(row.export_id), archives=len(kept))

    async def _failed(self, row: Any, cause: str) -> None:
        """Back in the queue for another try (after the lease), or FAILED after the last."""
        given_up = row.attempts >= ATTEMPTS
        await self._forget_try(row)
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                sa.update(exports)
                .where(exports.c.account_id == row.account_id, exports.c.export_id == row.export_id, exports.c.attempts == row.attempts)
                .values(
                    state="failed" if given_up else "queued", finished_at=self.clock.now() if given_up else None,
                    failure="the export could not be completed; please ask for a new one" if given_up else "",
                    lease_until=self.clock.now() + LEASE,
                )
            )
            await uow.commit()
        log.warning("export_try_failed", account_id=str(row.account_id), export_id=str(row.export_id), cause=cause, given_up=given_up)

    async def expire(self) -> int:
        """Deletes the archives of exports past their expiry; answers how many."""
        now = self.clock.now()
        async with self.db.read() as conn:
            due = (
                await conn.execute(
                    sa.select(exports.c.account_id, exports.c.export_id).where(exports.c.state == "ready", exports.c.expires_at <= now).limit(100)
                )
            ).all()
        for account, export in due:
            await self.storage.delete_prefix(_prefix(account, export))
            async with self.db.unit_of_work() as uow:
                await uow.execute(
                    sa.update(exports)
                    .where(exports.c.account_id == account, exports.c.export_id == export, exports.c.state == "ready")
                    .values(state="expired", archives=[])
                )
                await uow.commit()
            log.info("export_expired", account_id=str(account), export_id=str(export))
        return len(due)

    async def purge(self, account: uuid.UUID) -> int:
        """The account's archives and exports, for its deletion (idempotent)."""
        objects = await self.storage.delete_prefix(f"takeout/{account}/")
        async with self.db.unit_of_work() as uow:
            await uow.execute(sa.delete(exports).where(exports.c.account_id == account))
            await uow.commit()
        return objects



def _this_try(row: Any) -> tuple[sa.ColumnElement[bool], ...]:
    """The export's row while this try still runs it (another replica's takeover bumps attempts)."""
    return (
        exports.c.account_id == row.account_id, exports.c.export_id == row.export_id,
        exports.c.state == "running", exports.c.attempts == row.attempts,
    )


def _open_size(archives: list[Archive]) -> int:
    return archives[-1].writer.size if archives and archives[-1].writer is not None else 0


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _chain(*iterators: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for iterator in iterators:
        async for item in iterator:
            yield item
