"""`cumulo files` at the edges a person meets: nothing is created, overwritten or renamed
unless asked. A missing folder is refused unless -p; a name already taken is kept unless
--rename ("name (1).ext") or --replace (the earlier file goes to the trash); a local file is
not overwritten without --force; `mkdir` of a folder that exists says so. Listings line up
their columns and answer in JSON for scripts."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import pytest

from cumulo_devstack.testing import PASSWORD, unique_email
from cumulo_devstack.testing.cli import run_command
from cumulo_sdk import Cumulo, TokenStore
from cumulo_sdk.console import display_width


async def cumulo(gateway: str, home: pathlib.Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    result = await run_command("cumulo", "--gateway", gateway, *args, environ={"CUMULO_HOME": str(home)}, stdin=stdin)
    return result.returncode, result.stdout, result.stderr


async def logged_in(gateway: str, home: pathlib.Path) -> str:
    """A new account whose session is `home`'s, as `cumulo login` leaves it."""
    email = unique_email()
    async with Cumulo(gateway, store=TokenStore(home / "credentials.json")) as client:
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
        await client.login(email, PASSWORD, device_name="laptop")
    return email


@pytest.fixture
async def home(gateway, tmp_path) -> pathlib.Path:
    await logged_in(gateway, tmp_path / "home")
    return tmp_path / "home"


def local_file(tmp_path: pathlib.Path, name: str, data: bytes) -> pathlib.Path:
    path = tmp_path / "local" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


async def listing(gateway: str, home: pathlib.Path, *args: str) -> dict:
    code, out, err = await cumulo(gateway, home, *args, "--json")
    assert code == 0, err
    return json.loads(out)


async def test_put_into_a_missing_folder_is_refused_unless_p(gateway, home, tmp_path):
    photo = local_file(tmp_path, "beach.jpg", b"sand" * 100)
    code, out, err = await cumulo(gateway, home, "files", "put", str(photo), "/nofolder")
    assert (code, out) == (1, "")
    assert "/nofolder: no such folder" in err and "-p" in err and "cumulo files mkdir /nofolder" in err
    code, _, err = await cumulo(gateway, home, "files", "ls", "/nofolder")
    assert code == 1 and "no such file or folder" in err  # the same answer as before the put: nothing was made

    code, out, err = await cumulo(gateway, home, "files", "put", "-p", str(photo), "/nofolder/2026")
    assert code == 0 and out.startswith("uploaded beach.jpg ("), err
    [node] = (await listing(gateway, home, "files", "ls", "/nofolder/2026"))["nodes"]
    assert (node["name"], node["kind"], node["size"]) == ("beach.jpg", "file", 400)


async def test_put_into_a_file_is_refused(gateway, home, tmp_path):
    photo = local_file(tmp_path, "beach.jpg", b"sand")
    assert (await cumulo(gateway, home, "files", "put", str(photo), "/"))[0] == 0
    code, _, err = await cumulo(gateway, home, "files", "put", str(photo), "/beach.jpg")
    assert code == 1 and "/beach.jpg: is a file, not a folder" in err


async def test_a_taken_name_is_kept_unless_rename_or_replace(gateway, home, tmp_path):
    first = local_file(tmp_path, "notes.txt", b"first version\n")
    assert (await cumulo(gateway, home, "files", "put", str(first), "/"))[0] == 0
    first.write_bytes(b"second version\n")

    code, out, err = await cumulo(gateway, home, "files", "put", str(first), "/")
    assert (code, out) == (1, "")
    assert "/notes.txt already exists; pass --rename to upload it as 'notes (1).txt'" in err and "--replace" in err

    code, out, err = await cumulo(gateway, home, "files", "put", "--rename", str(first), "/")
    assert code == 0 and out.startswith("uploaded notes.txt as notes (1).txt ("), err
    first.write_bytes(b"third version\n")
    code, out, err = await cumulo(gateway, home, "files", "put", "--rename", str(first), "/")
    assert code == 0 and "as notes (2).txt" in out, err

    first.write_bytes(b"fourth version\n")
    code, out, err = await cumulo(gateway, home, "files", "put", "--replace", str(first), "/")
    assert code == 0, err
    assert out.splitlines()[0].startswith("uploaded notes.txt (") and "the earlier notes.txt is in the trash" in out
    names = sorted(node["name"] for node in (await listing(gateway, home, "files", "ls"))["nodes"])
    assert names == ["notes (1).txt", "notes (2).txt", "notes.txt"]
    back = tmp_path / "back.txt"
    assert (await cumulo(gateway, home, "files", "get", "/notes.txt", str(back)))[0] == 0
    assert back.read_bytes() == b"fourth version\n"
    [trashed] = (await listing(gateway, home, "trash", "ls"))["nodes"]
    assert trashed["name"] == "notes.txt" and trashed["size"] == len(b"first version\n")


async def test_replace_takes_only_a_files_place(gateway, home, tmp_path):
    assert (await cumulo(gateway, home, "files", "mkdir", "/music"))[0] == 0
    music = local_file(tmp_path, "music", b"not a folder")
    code, _, err = await cumulo(gateway, home, "files", "put", "--replace", str(music), "/")
    assert code == 1 and "/music is a folder; --replace replaces only a file" in err
    code, out, err = await cumulo(gateway, home, "files", "put", "--rename", str(music), "/")
    assert code == 0 and "as music (1)" in out, err


async def test_get_does_not_overwrite_a_local_file_without_force(gateway, home, tmp_path):
    source = local_file(tmp_path, "report.pdf", b"%PDF remote")
    assert (await cumulo(gateway, home, "files", "put", str(source), "/"))[0] == 0
    mine = tmp_path / "mine.pdf"
    mine.write_bytes(b"my own work")
    code, out, err = await cumulo(gateway, home, "files", "get", "/report.pdf", str(mine))
    assert (code, out) == (1, "")
    assert f"{mine} already exists; pass --force to overwrite it" in err
    assert mine.read_bytes() == b"my own work"
    # Into a folder: the file's own name there is the one not to overwrite.
    code, _, err = await cumulo(gateway, home, "files", "get", "/report.pdf", str(source.parent))
    assert code == 1 and "report.pdf already exists" in err
    code, out, err = await cumulo(gateway, home, "files", "get", "/report.pdf", str(mine), "--force")
    assert code == 0 and "sha256 verified" in out, err
    assert mine.read_bytes() == b"%PDF remote"


async def test_listings_answer_in_json_with_iso_times(gateway, home, tmp_path):
    photo = local_file(tmp_path, "harbour.jpg", b"x" * 1000)
    for args in (("files", "mkdir", "/photos"), ("files", "put", str(photo), "/photos")):
        assert (await cumulo(gateway, home, *args))[0] == 0
    code, out, err = await cumulo(gateway, home, "share", "create", "/photos/harbour.jpg", "--expires-in", "7d")
    assert code == 0, err

    files = await listing(gateway, home, "files", "ls", "/photos")
    [node] = files["nodes"]
    assert files["path"] == "/photos"
    assert set(node) >= {"node_id", "parent_id", "name", "kind", "size", "sha256", "created_at", "modified_at", "blocked"}
    assert dt.datetime.fromisoformat(node["modified_at"]).utcoffset() == dt.timedelta(0)
    [link] = (await listing(gateway, home, "share", "ls"))["links"]
    assert link["name"] == "harbour.jpg" and link["password_protected"] is False
    expires = dt.datetime.fromisoformat(link["expires_at"])
    assert dt.timedelta(days=6) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=7)
    assert (await listing(gateway, home, "share", "inbox")) == {"shares": []}
    usage = await listing(gateway, home, "usage")
    assert usage["used"] >= 1000 and usage["quota"] > usage["used"]

    assert (await cumulo(gateway, home, "files", "rm", "/photos/harbour.jpg"))[0] == 0
    [trashed] = (await listing(gateway, home, "trash", "ls"))["nodes"]
    assert trashed["name"] == "harbour.jpg"
    code, out, err = await cumulo(gateway, home, "trash", "empty")
    assert (code, out) == (0, "deleted 1 item for good\n"), err


async def test_a_name_in_another_unicode_form_is_the_same_name(gateway, home, tmp_path):
    """macOS names files decomposed ("e" + U+0301); the service keeps names composed (NFC)."""
    composed, decomposed = "caf\u00e9.txt", "cafe\u0301.txt"
    assert (await cumulo(gateway, home, "files", "put", str(local_file(tmp_path, composed, b"one")), "/"))[0] == 0
    (tmp_path / "mac").mkdir()
    from_a_mac = tmp_path / "mac" / decomposed
    from_a_mac.write_bytes(b"two")
    code, out, err = await cumulo(gateway, home, "files", "put", str(from_a_mac), "/")
    assert (code, out) == (1, ""), err
    assert f"/{composed} already exists; pass --rename to upload it as 'caf\u00e9 (1).txt'" in err
    code, out, err = await cumulo(gateway, home, "files", "put", "--replace", str(from_a_mac), "/")
    assert code == 0 and out.startswith(f"uploaded {decomposed} ("), err
    names = [node["name"] for node in (await listing(gateway, home, "files", "ls"))["nodes"]]
    assert names == [composed]
    back = tmp_path / "back.txt"
    assert (await cumulo(gateway, home, "files", "get", f"/{decomposed}", str(back)))[0] == 0  # a path typed either way
    assert back.read_bytes() == b"two"


async def test_put_lists_each_folder_of_the_path_once(gateway, blob, home, tmp_path):
    """Once to find the next folder on the path, once for the names taken in the last one."""
    assert (await cumulo(gateway, home, "files", "mkdir", "/photos/2026"))[0] == 0
    photo = local_file(tmp_path, "beach.jpg", b"sand")
    assert (await cumulo(gateway, home, "files", "put", str(photo), "/photos/2026"))[0] == 0
    async with Cumulo(gateway, store=TokenStore(home / "credentials.json")) as client:
        account_id = (await client.whoami()).account.account_id
    listed: list[str] = []
    list_folder = blob.app.folders.list_folder

    async def counted(account, folder_id, *rest):
        if str(account) == account_id:
            listed.append(folder_id)
        return await list_folder(account, folder_id, *rest)

    blob.app.folders.list_folder = counted
    try:
        code, out, err = await cumulo(gateway, home, "files", "put", "--replace", str(photo), "/photos/2026")
    finally:
        del blob.app.folders.list_folder  # the class's method again
    assert code == 0, err
    assert len(listed) == 3 and len(set(listed)) == 3, listed  # the root, /photos, /photos/2026


async def test_mkdir_says_when_the_folder_exists_already(gateway, home, tmp_path):
    """As `mkdir -p`: not an error (exit code 0), but not "created" either."""
    assert await cumulo(gateway, home, "files", "mkdir", "/big") == (0, "created /big\n", "")
    assert await cumulo(gateway, home, "files", "mkdir", "/big") == (0, "/big already exists\n", "")
    assert await cumulo(gateway, home, "files", "mkdir", "big/2026/") == (0, "created /big/2026\n", "")
    assert await cumulo(gateway, home, "files", "mkdir", "/big/2026") == (0, "/big/2026 already exists\n", "")
    assert [node["name"] for node in (await listing(gateway, home, "files", "ls", "/big"))["nodes"]] == ["2026"]
    photo = local_file(tmp_path, "beach.jpg", b"sand")
    assert (await cumulo(gateway, home, "files", "put", str(photo), "/big"))[0] == 0
    code, out, err = await cumulo(gateway, home, "files", "mkdir", "/big/beach.jpg/raw")
    assert (code, out) == (1, "")
    assert err == "cumulo: /big/beach.jpg: is a file, not a folder [NOT_A_FOLDER]\n"


async def test_a_listing_lines_up_its_columns_whatever_the_names_and_has_no_header_in_a_pipe(gateway, home, tmp_path):
    """In a pipe (as here) the first line is the first row: `awk 'NR==1 {print $1}'` finds an id."""
    for name in ("a.txt", "假期照片-北京.jpg", "cafe\u0301 notes.txt"):
        assert (await cumulo(gateway, home, "files", "put", str(local_file(tmp_path, name, b"x" * 10)), "/"))[0] == 0
    code, out, err = await cumulo(gateway, home, "files", "ls")
    assert code == 0, err
    rows = out.splitlines()
    ids = {node["name"]: node["node_id"] for node in (await listing(gateway, home, "files", "ls"))["nodes"]}
    assert len(rows) == 3 and all(row.startswith("-  ") and row.split()[-1] in ids.values() for row in rows), out
    # The id column starts in the same screen column on every line, Chinese name or not.
    assert len({display_width(row[: row.index(row.split()[-1])]) for row in rows}) == 1, out
    code, out, err = await cumulo(gateway, home, "share", "create", "/a.txt")
    assert code == 0, err
    code, out, err = await cumulo(gateway, home, "share", "ls")
    assert code == 0 and out.split()[0] == (await listing(gateway, home, "share", "ls"))["links"][0]["link_id"], out
