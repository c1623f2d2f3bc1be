"""`cumulo sync ...` and `cumulo backup ...` as people run them: each CUMULO_HOME is a
device of one account; records go up from a JSON Lines file and come down as JSON lines,
a stale tag is a conflict showing the server's record, each pull prints only what changed
since the device's last one; a folder is backed up (a second time sending only what
changed) and restored byte for byte. Commands run in-process; the installed console script
runs once per command group."""

from __future__ import annotations

import json
import os
import pathlib
import re
import uuid

import pytest

from cumulo_devstack.testing import PASSWORD
from cumulo_devstack.testing.cli import run_command


async def cumulo(gateway: str, home: pathlib.Path, *args: str, stdin: str = "", process: bool = False) -> tuple[int, str, str]:
    """`cumulo ARGS` in-process (`process`: the installed console script)."""
    result = await run_command(
        "cumulo", *args, environ={"CUMULO_GATEWAY": gateway, "CUMULO_HOME": str(home)}, stdin=stdin, process=process
    )
    return result.returncode, result.stdout, result.stderr


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture
async def homes(gateway: str, sync, tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """Two devices (CUMULO_HOMEs) logged in to one new account through the CLI."""
    email = f"cli-sync-{uuid.uuid4().hex[:10]}@example.com"
    phone, laptop = tmp_path / "phone-home", tmp_path / "laptop-home"
    code, out, err = await cumulo(
        gateway, phone, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n"
    )
    assert code == 0 and "created" in out, err
    for home, name in ((phone, "phone"), (laptop, "laptop")):
        code, out, err = await cumulo(gateway, home, "login", email, "--device-name", name, stdin=PASSWORD + "\n")
        assert code == 0 and email in out, err
    return phone, laptop


def write_jsonl(path: pathlib.Path, *items: dict) -> pathlib.Path:
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    return path


async def test_records_pushed_on_one_device_are_pulled_on_the_other(gateway, homes, tmp_path) -> None:
    phone, laptop = homes
    first = write_jsonl(
        tmp_path / "contacts.jsonl",
        {"id": "ann", "type": "contact", "data": {"name": "Ann", "city": "Zürich"}},
        {"id": "bob", "type": "contact", "data": {"name": "Bob"}},
        {"id": "raw", "type": "blob", "payload_b64": "AAEC/w=="},
    )
    code, out, err = await cumulo(gateway, phone, "sync", "push", "contacts", str(first), "--device", "phone")
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines] == [["saved", "ann"], ["saved", "bob"], ["saved", "raw"]]
    tags = {line.split()[1]: re.search(r"tag=(\S+)", line).group(1) for line in lines}

    code, out, err = await cumulo(gateway, laptop, "sync", "pull", "contacts")
    assert code == 0, err
    pulled = json_lines(out)
    assert [(r["id"], r.get("type"), r.get("data"), r.get("payload_b64"), r["tag"], r["device"]) for r in pulled] == [
        ("ann", "contact", {"name": "Ann", "city": "Zürich"}, None, tags["ann"], "phone"),
        ("bob", "contact", {"name": "Bob"}, None, tags["bob"], "phone"),
        ("raw", "blob", None, "AAEC/w==", tags["raw"], "phone"),
    ]
    assert "3 changes;" in err

    # The phone changes Ann; the laptop, still on Ann's old tag, conflicts.
    update = write_jsonl(tmp_path / "ann.jsonl", {"id": "ann", "type": "contact", "data": {"name": "Ann B."}, "tag": tags["ann"]})
    code, out, err = await cumulo(gateway, phone, "sync", "push", "contacts", str(update), "--device", "phone")
    assert code == 0 and out.startswith("saved") and "ann" in out, err
    new_tag = re.search(r"tag=(\S+)", out).group(1)
    assert new_tag != tags["ann"]
    stale = write_jsonl(
        tmp_path / "stale.jsonl",
        {"id": "ann", "type": "contact", "data": {"name": "Ann from the laptop"}, "tag": tags["ann"]},
        {"id": "carol", "type": "contact", "data": {"name": "Carol"}},
    )
    code, out, err = await cumulo(gateway, laptop, "sync", "push", "contacts", str(stale), "--device", "laptop")
    assert code == 1
    (conflict,) = [line for line in out.splitlines() if line.startswith("conflict")]
    assert conflict.split()[1] == "ann"
    server = json.loads(conflict.split("server has: ", 1)[1])
    assert (server["id"], server["data"], server["tag"], server["device"]) == ("ann", {"name": "Ann B."}, new_tag, "phone")
    assert any(line.split()[:2] == ["saved", "carol"] for line in out.splitlines())
    assert "conflict" in err

    # The laptop's next pull: only what changed since its last one (Ann's new version, and
    # its own Carol), not Bob or the raw record again.
    code, out, err = await cumulo(gateway, laptop, "sync", "pull", "contacts")
    assert code == 0, err
    assert [(r["id"], r["data"]) for r in json_lines(out)] == [("ann", {"name": "Ann B."}), ("carol", {"name": "Carol"})]
    code, out, err = await cumulo(gateway, laptop, "sync", "pull", "contacts")
    assert code == 0 and out == "" and "0 changes;" in err, err

    # A delete on top of the server's tag reaches the phone as a tombstone.
    gone = write_jsonl(tmp_path / "gone.jsonl", {"id": "bob", "delete": True, "tag": tags["bob"]})
    code, out, err = await cumulo(gateway, laptop, "sync", "push", "contacts", str(gone), "--device", "laptop")
    assert code == 0 and out.split()[:2] == ["deleted", "bob"], err
    code, out, err = await cumulo(gateway, phone, "sync", "pull", "contacts", "--full")
    assert code == 0, err
    assert {r["id"]: r.get("deleted", False) for r in json_lines(out)} == {"ann": False, "bob": True, "raw": False, "carol": False}
    code, out, err = await cumulo(gateway, phone, "sync", "zones")
    assert code == 0 and re.search(r"^contacts +3 ", out, re.MULTILINE), (out, err)  # its name, its count of records


async def test_a_bad_line_is_refused_and_nothing_is_pushed(gateway, homes, tmp_path) -> None:
    phone, _ = homes
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "ok", "data": 1}\nnot json\n', encoding="utf-8")
    code, out, err = await cumulo(gateway, phone, "sync", "push", "contacts", str(bad))
    assert code == 2 and "line 2" in err
    code, out, err = await cumulo(gateway, phone, "sync", "pull", "contacts")
    assert code == 0 and out == "", err


async def test_a_folder_is_backed_up_twice_and_restored_byte_for_byte(gateway, homes, tmp_path) -> None:
    phone, laptop = homes
    source = tmp_path / "phone-data"
    (source / "photos" / "2026").mkdir(parents=True)
    (source / "notes.txt").write_bytes(b"first version\n")
    (source / "photos" / "2026" / "beach.jpg").write_bytes(os.urandom(200_000))
    (source / "photos" / "empty").write_bytes(b"")
    (source / "Grüße.txt").write_text("non-ASCII name\n", encoding="utf-8")
    original = {p.relative_to(source).as_posix(): p.read_bytes() for p in source.rglob("*") if p.is_file()}

    code, out, err = await cumulo(gateway, phone, "backup", "create", str(source), "--device", "phone")
    assert code == 0, err
    first = re.match(r"backup (\S+) of phone: 4 files, .*; sent 4 \(.*\), 0 unchanged$", out.strip())
    assert first, out
    first_id = first.group(1)

    (source / "notes.txt").write_bytes(b"second version\n")
    (source / "photos" / "new.png").write_bytes(os.urandom(10_000))
    code, out, err = await cumulo(gateway, phone, "backup", "create", str(source), "--device", "phone")
    assert code == 0, err
    second = re.match(r"backup (\S+) of phone: 5 files, .*; sent 2 \(.*\), 3 unchanged$", out.strip())
    assert second, out
    second_id = second.group(1)

    code, out, err = await cumulo(gateway, laptop, "backup", "ls")
    assert code == 0, err
    listed = out.splitlines()
    assert [line.split()[0] for line in listed] == [second_id, first_id]
    # Backup, when, device, files, size: the counts under their FILES column.
    assert re.search(r" phone +5 ", listed[0]) and re.search(r" phone +4 ", listed[1]), listed

    code, out, err = await cumulo(gateway, laptop, "backup", "show", first_id)
    assert code == 0, err
    assert sorted(line.split("  ")[-1] for line in out.splitlines()) == sorted(original)

    target = tmp_path / "restored"
    code, out, err = await cumulo(gateway, laptop, "backup", "restore", first_id, str(target))
    assert code == 0 and "restored 4 files" in out, err
    assert {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*") if p.is_file()} == original
    # Not over existing files.
    code, out, err = await cumulo(gateway, laptop, "backup", "restore", second_id, str(target))
    assert code == 2 and "exists" in err
    assert (target / "notes.txt").read_bytes() == b"first version\n"


@pytest.mark.parametrize("command", [["sync", "zones"], ["backup", "ls"]], ids=["sync", "backup"])
async def test_the_installed_console_script_runs_each_command_group(gateway, homes, command) -> None:
    phone, _ = homes
    code, out, err = await cumulo(gateway, phone, *command, process=True)
    assert (code, err) == (0, ""), err
    assert out.startswith("sync storage:") if command[0] == "sync" else out == ""
