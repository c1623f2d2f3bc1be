"""`cumulo devices ...` and `cumulo device-agent` as people run them: one CUMULO_HOME is the
owner's laptop, another the device, both logged in to one new account. The agent (a
simulated phone walking around Shanghai) reports its position every second and obeys
the commands the owner sends from the other home, then stops after three. Commands run
in-process; the installed console script runs once per command group."""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
import uuid

import pytest

from cumulo_devstack.testing import PASSWORD
from cumulo_devstack.testing.cli import Command, run_command, start_command

WAIT = 60.0  # generous: a shared machine
POSITION = re.compile(r"(-?\d+\.\d{5}),(-?\d+\.\d{5}) ±(\d+) m at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def environ(gateway: str, home: pathlib.Path) -> dict[str, str]:
    return {"CUMULO_GATEWAY": gateway, "CUMULO_HOME": str(home)}


async def cumulo(gateway: str, home: pathlib.Path, *args: str, stdin: str = "", process: bool = False) -> tuple[int, str, str]:
    """`cumulo ARGS` in-process (`process`: the installed console script)."""
    result = await run_command("cumulo", *args, environ=environ(gateway, home), stdin=stdin, process=process)
    return result.returncode, result.stdout, result.stderr


class Agent:
    """`cumulo device-agent` running in the background, its output line by line."""

    def __init__(self, command: Command) -> None:
        self.command = command

    @property
    def lines(self) -> list[str]:
        return self.command.output.splitlines()

    async def line(self, pattern: str) -> re.Match[str]:
        """The first line matching `pattern`, waiting for it."""

        async def found() -> re.Match[str]:
            while True:
                ended = self.command.returncode is not None  # then its output is all there
                for text in self.lines:
                    if match := re.search(pattern, text):
                        return match
                if ended:
                    raise AssertionError(f"the agent exited without printing {pattern!r}: {self.lines}")
                await asyncio.sleep(0.1)

        return await asyncio.wait_for(found(), WAIT)

    async def exited(self) -> int:
        return (await self.command.wait(WAIT)).returncode

    async def stop(self) -> str:
        """Its standard error, once it has ended (interrupted, as with Ctrl-C, if it still runs)."""
        self.command.interrupt()
        return (await self.command.wait(WAIT)).stderr


def start_agent(gateway: str, home: pathlib.Path, *args: str, process: bool = False) -> Agent:
    return Agent(start_command("cumulo", "device-agent", *args, environ=environ(gateway, home), process=process))


@pytest.fixture
async def homes(gateway: str, locator, tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """The owner's laptop and the device (CUMULO_HOMEs) logged in to one new account through the CLI."""
    email = f"cli-devices-{uuid.uuid4().hex[:10]}@example.com"
    laptop, phone = tmp_path / "laptop-home", tmp_path / "phone-home"
    code, out, err = await cumulo(
        gateway, laptop, "signup", "--email", email, "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n"
    )
    assert code == 0 and "created" in out, err
    for home, name in ((laptop, "laptop"), (phone, "phone")):
        code, out, err = await cumulo(gateway, home, "login", email, "--device-name", name, stdin=PASSWORD + "\n")
        assert code == 0 and email in out, err
    return laptop, phone


def near(line: str, latitude: float, longitude: float) -> bool:
    match = POSITION.search(line)
    return match is not None and abs(float(match.group(1)) - latitude) < 0.01 and abs(float(match.group(2)) - longitude) < 0.01


async def test_the_owner_finds_rings_locks_and_wipes_a_simulated_device(gateway, homes) -> None:
    laptop, phone = homes
    device_id = f"cli-phone-{uuid.uuid4().hex[:6]}"
    agent = start_agent(
        gateway, phone, "--name", "cli phone", "--device-id", device_id, "--start", "31.2,121.4", "--every", "1", "--count", "3"
    )
    try:
        await agent.line(rf"^device {device_id} \(cli phone\) registered$")

        code, out, err = await cumulo(gateway, laptop, "devices", "ls")
        assert code == 0, err
        (listed,) = out.splitlines()
        assert listed.split()[:3] == [device_id, "cli", "phone"]

        # Locate: the last known position at once, a fresh one when the device answers.
        code, out, err = await cumulo(gateway, laptop, "devices", "locate", device_id, "--wait", str(WAIT))
        assert code == 0, err
        last_known, now = out.splitlines()
        assert last_known.startswith("last known: ")
        assert now.startswith("now:") and near(now, 31.2, 121.4), out
        await agent.line(r"^command \S+: locating: reporting a fresh position$")

        code, out, err = await cumulo(gateway, laptop, "devices", "ring", device_id, "--seconds", "12", "--wait", str(WAIT))
        assert code == 0, err
        queued, done = out.splitlines()
        ring_id = queued.split()[0]
        assert queued.split()[1:3] == ["ring", "queued"]
        assert done.split()[:3] == [ring_id, "ring", "succeeded"] and done.endswith("(ringing for 12 s)"), out
        await agent.line(rf"^command {ring_id}: ringing for 12 s$")

        code, out, err = await cumulo(
            gateway, laptop, "devices", "lock", device_id, "--message", "Lost, please call", "--phone", "+86 138 0013 8000",
            "--wait", str(WAIT),
        )
        assert code == 0, err
        queued, done = out.splitlines()
        lock_id = queued.split()[0]
        assert queued.split()[1:3] == ["lost_mode", "queued"]
        assert done.split()[:3] == [lock_id, "lost_mode", "succeeded"], out
        await agent.line(rf"^command {lock_id}: lost mode: screen locked, showing 'Lost, please call', call \+86 138 0013 8000$")

        # Three commands: the agent stops by itself.
        assert await agent.exited() == 0
        assert agent.lines[-1] == "handled 3 commands"
        assert len([line for line in agent.lines if line.startswith("command ")]) == 3
    finally:
        errors = await agent.stop()
    assert "Traceback" not in errors, errors
    executed = set(json.loads((phone / f"agent-{device_id}.json").read_text()))
    assert {ring_id, lock_id} < executed and len(executed) == 3

    code, out, err = await cumulo(gateway, laptop, "devices", "commands", device_id)
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()]
    assert [row[1:3] for row in rows] == [["lost_mode", "succeeded"], ["ring", "succeeded"], ["locate", "succeeded"]]
    assert [row[0] for row in rows[:2]] == [lock_id, ring_id]
    assert set(row[0] for row in rows) == executed

    code, out, err = await cumulo(gateway, laptop, "devices", "history", device_id)
    assert code == 0, err
    positions = out.splitlines()
    assert len(positions) >= 2 and all(near(line, 31.2, 121.4) for line in positions), out
    code, out, err = await cumulo(gateway, laptop, "devices", "history", device_id, "--hours", "1")
    assert code == 0 and out.splitlines() == positions, err

    code, out, err = await cumulo(gateway, laptop, "devices", "ls")
    assert code == 0, err
    (listed,) = out.splitlines()
    assert " 87%  " in listed and near(listed, 31.2, 121.4) and "[lost" in listed, listed  # its battery

    # Wipe: the password from standard input's first line; a wrong one queues nothing.
    code, out, err = await cumulo(gateway, laptop, "devices", "wipe", device_id, "--wait", "0", stdin="not my password\n")
    assert code == 1 and out == "" and "cumulo:" in err, (out, err)
    code, out, err = await cumulo(gateway, laptop, "devices", "wipe", device_id, "--wait", "0", stdin=PASSWORD + "\n")
    assert code == 0, err
    (queued,) = out.splitlines()
    wipe_id = queued.split()[0]
    assert queued.split()[1:3] == ["wipe", "queued"]
    code, out, err = await cumulo(gateway, laptop, "devices", "commands", device_id)
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()]
    assert rows[0][:3] == [wipe_id, "wipe", "queued"] and len(rows) == 4


async def test_an_agent_replays_a_gpx_track(gateway, homes, tmp_path) -> None:
    laptop, phone = homes
    track = tmp_path / "walk.gpx"
    fixes = [(39.90420, 116.40740), (39.90450, 116.40790), (39.90480, 116.40840)]
    track.write_text(
        '<?xml version="1.0"?>\n<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
        + "".join(f'<trkpt lat="{lat}" lon="{lon}"/>' for lat, lon in fixes)
        + "</trkseg></trk></gpx>\n"
    )
    device_id = f"gpx-{uuid.uuid4().hex[:6]}"
    # The installed console script: the device-agent group's smoke test.
    agent = start_agent(
        gateway, phone, "--name", "walker", "--device-id", device_id, "--track", str(track), "--every", "1", "--count", "1", process=True
    )
    try:
        await agent.line(rf"^device {device_id} \(walker\) registered$")

        async def history() -> list[tuple[float, float]]:
            code, out, err = await cumulo(gateway, laptop, "devices", "history", device_id)
            assert code == 0, err
            return [(float(m.group(1)), float(m.group(2))) for m in map(POSITION.search, out.splitlines()) if m]

        # The track is walked one fix a second, and stays at its last.
        deadline = asyncio.get_running_loop().time() + WAIT
        while fixes[-1] not in await history():
            assert asyncio.get_running_loop().time() < deadline, "the track's last fix never reported"
            await asyncio.sleep(0.5)
        code, out, err = await cumulo(gateway, laptop, "devices", "unlock", device_id, "--wait", str(WAIT))
        assert code == 0 and out.splitlines()[-1].split()[1:3] == ["lost_mode", "succeeded"], (out, err)
        await agent.line(r"^command \S+: lost mode off$")
        assert await agent.exited() == 0
    finally:
        await agent.stop()
    reported = await history()  # newest first
    assert set(reported) == set(fixes) and reported[-1] == fixes[0] and reported[0] == fixes[-1], reported


async def test_the_installed_console_script_runs_the_devices_group(gateway, homes) -> None:
    laptop, _ = homes
    code, out, err = await cumulo(gateway, laptop, "devices", "ls", process=True)
    assert (code, out, err) == (0, "", "")
