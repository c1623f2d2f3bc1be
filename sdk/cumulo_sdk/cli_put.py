"""`cumulo files put`: a local file into a folder that exists (-p creates it). A name already
taken there stays as it is unless asked: --rename uploads as "name (1).ext" (the name the
service itself gives when two uploads meet), --replace puts the earlier file in the trash
once the new one is whole. At a terminal the command asks instead of refusing.

The same command again finishes an interrupted run: the upload resumes from the bytes the
server has committed, and a replacement goes on from the step it had reached, as its plan
is kept with the unfinished uploads ($CUMULO_HOME/uploads.json) until it is done."""

from __future__ import annotations

import argparse
import pathlib
from typing import TYPE_CHECKING, Any

from cumulo.blob.v1 import blob_pb2
from cumulo_sdk.cli_common import ask, at_terminal, fail, remote_path
from cumulo_sdk.console import ProgressBar, human_size, screen
from cumulo_sdk.errors import CumuloRpcError
from cumulo_sdk.files import same_name, stored_name
from cumulo_sdk.transfer import hash_file

if TYPE_CHECKING:
    from cumulo_sdk.client import Cumulo

FOLDER = blob_pb2.NODE_KIND_FOLDER


def free_name(name: str, taken: set[str]) -> str:
    """ "report (1).pdf", "report (2).pdf"...: the first such name not taken."""
    stem, dot, extension = name.rpartition(".")
    if not stem:  # no extension, or a dot file such as ".profile"
        stem, dot, extension = name, "", ""
    number = 1
    while (candidate := f"{stem} ({number}){dot}{extension}") in taken:
        number += 1
    return candidate


async def _folder_for_upload(client: Cumulo, path: str, *, parents: bool) -> str | None:
    """The folder's id ("" for the root); None, having said why, when there is no such folder."""
    if parents:
        return await client.files.makedirs(path)
    try:
        folder = await client.files.resolve(path)
    except CumuloRpcError as err:
        if err.reason != "NODE_NOT_FOUND":
            raise
        shown = remote_path(path)
        fail(f"{shown}: no such folder; create it first (cumulo files mkdir {shown}), or pass -p to create it with the upload")
        return None
    if folder is not None and folder.kind != FOLDER:
        fail(f"{remote_path(path)}: is a file, not a folder")
        return None
    return folder.node_id if folder else ""


def _conflict_choice(args: argparse.Namespace, where: str, taken: blob_pb2.Node, instead: str) -> str | None:
    """"rename", "replace" or None (refused, having said what to pass)."""
    folder = taken.kind == FOLDER
    if args.on_conflict == "replace" and folder:
        fail(f"{where} is a folder; --replace replaces only a file (pass --rename to upload as {instead!r})")
        return None
    if args.on_conflict:
        return str(args.on_conflict)
    if at_terminal():
        options = f"Upload it as {instead!r} (r)" + ("" if folder else ", replace the existing file, which goes to the trash (p)")
        answer = ask(f"{where} already exists. {options}, or cancel (c)? [c]")
        choice = {"r": "rename", "p": None if folder else "replace"}.get(answer[:1])
        if choice:
            return choice
        fail("nothing uploaded")
        return None
    replace = "" if folder else ", or --replace to put the existing file in the trash and take its place"
    fail(f"{where} already exists; pass --rename to upload it as {instead!r}{replace}")
    return None


def _said_uploaded(local: pathlib.Path, node: blob_pb2.Node) -> None:
    shown = local.name if same_name(node.name, local.name) else f"{local.name} as {node.name}"
    print(f"uploaded {shown} ({human_size(node.size)}, sha256 {node.sha256})")


async def _put(client: Cumulo, args: argparse.Namespace) -> int:
    local = pathlib.Path(args.local)
    if not local.is_file():
        fail(f"{local}: no such file")
        return 2
    folder_id = await _folder_for_upload(client, args.folder, parents=args.parents)
    if folder_id is None:
        return 1
    # Names as the service keeps them: a decomposed local name (macOS) meets its stored twin.
    name = stored_name(local.name)
    siblings = {stored_name(node.name): node for node in await client.files.ls(folder_id)}
    replacement = Replacement(client, local, folder_id, name)
    if (plan := replacement.unfinished()) is not None:
        if args.on_conflict != "rename":
            return await replacement.finish(plan, siblings)
        replacement.forget()  # the person asks for something else this time
    if name in siblings:
        instead = free_name(name, set(siblings))
        choice = _conflict_choice(args, remote_path(args.folder, name), siblings[name], instead)
        if choice is None:
            return 1
        if choice == "replace":
            return await replacement.finish(replacement.start(siblings[name], instead), siblings)
        name = instead
    try:
        node = await client.files.upload(local, parent_id=folder_id, name=name, progress=ProgressBar(local.name, upload=True))
    except CumuloRpcError as err:
        if err.reason != "NAME_TAKEN" or args.on_conflict:
            raise
        fail(f"{remote_path(args.folder, name)} was created meanwhile; pass --rename or --replace")
        return 1
    _said_uploaded(local, node)
    return 0


class Replacement:
    """`--replace`, in steps a new run takes up wherever an interrupted one stopped: the new
    file goes up under a free name (the earlier file stays whole until the new one is), the
    earlier file goes to the trash, the new one takes its name. The plan (the earlier file's
    id, the free name) is kept until the last step is done, under a key naming the local
    file as it is now and the folder: the same command finds it."""

    def __init__(self, client: Cumulo, local: pathlib.Path, folder_id: str, name: str) -> None:
        self.client, self.local, self.folder_id, self.name = client, local, folder_id, name
        stat = local.stat()
        self.key = f"replace|{local.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{folder_id}|{name}"

    def unfinished(self) -> dict[str, str] | None:
        plan = self.client.files.pending.get(self.key)
        return plan if isinstance(plan, dict) and {"replacing", "upload_as"} <= plan.keys() else None

    def start(self, replacing: blob_pb2.Node, upload_as: str) -> dict[str, str]:
        plan = {"replacing": replacing.node_id, "upload_as": upload_as}
        self.client.files.pending.put(self.key, plan)
        return plan

    def forget(self) -> None:
        self.client.files.pending.put(self.key, None)

    async def finish(self, plan: dict[str, str], siblings: dict[str, blob_pb2.Node]) -> int:
        screen().unfinished = f"finish replacing {self.name}"  # what Ctrl-C's line says from now on
        bar = ProgressBar(self.local.name, upload=True)
        digest = await hash_file(self.local, bar)
        named = siblings.get(self.name)
        if named is not None and named.node_id != plan["replacing"] and self._holds(named, digest):
            node = named  # an earlier run got as far as the last step
            bar.stored(node.size, node.size)
        else:
            node = await self._upload(plan, siblings, digest, bar)
            if plan["replacing"] in {sibling.node_id for sibling in siblings.values()}:
                await self.client.files.delete(plan["replacing"])
            node = await self.client.files.rename(node.node_id, self.name)
        self.forget()
        screen().unfinished = ""
        _said_uploaded(self.local, node)
        print(f"the earlier {self.name} is in the trash (cumulo trash ls; cumulo trash restore {plan['replacing']})")
        return 0

    async def _upload(self, plan: dict[str, str], siblings: dict[str, blob_pb2.Node], digest: str, bar: ProgressBar) -> blob_pb2.Node:
        """The new file under its free name: the one an earlier run uploaded, when it did."""
        uploaded = siblings.get(plan["upload_as"])
        if uploaded is not None and self._holds(uploaded, digest):
            bar.stored(uploaded.size, uploaded.size)
            return uploaded
        if uploaded is not None:  # something else has taken the free name since
            plan["upload_as"] = free_name(self.name, set(siblings))
            self.client.files.pending.put(self.key, plan)
        return await self.client.files.upload(self.local, parent_id=self.folder_id, name=plan["upload_as"], progress=bar, sha256=digest)

    @staticmethod
    def _holds(node: blob_pb2.Node, digest: str) -> bool:
        return node.kind != FOLDER and node.sha256 == digest


def add_put_command(files: Any) -> None:
    put = files.add_parser(
        "put", help="upload a file into a folder; run it again to resume an interrupted upload",
        description="Upload a file into a folder that exists (-p creates it). A name already taken there "
        "is kept unless --rename or --replace says otherwise; at a terminal you are asked. An interrupted "
        "run (an upload, a replacement) is finished by the same command again.",
    )
    put.add_argument("local", help="the file on this machine")
    put.add_argument("folder", nargs="?", default="/", help="the folder to put it in (default: /)")
    put.add_argument("-p", "--parents", action="store_true", help="create the folder, and its parents, if missing")
    taken = put.add_mutually_exclusive_group()
    taken.add_argument(
        "--rename", dest="on_conflict", action="store_const", const="rename",
        help='if the name is taken, upload as "name (1).ext" (the first free number)',
    )
    taken.add_argument(
        "--replace", dest="on_conflict", action="store_const", const="replace",
        help="if a file has the name, take its place; it goes to the trash (it can be restored), and its share "
        "links and shares with other people stop working with it",
    )
    put.set_defaults(run=_put)
