"""`make run`'s launcher end to end: the embedded servers, every service and the gateway come
up, the README's CLI session works through it, and Ctrl-C stops every process it started."""

import asyncio
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile

import psutil

from cumulo_devstack.servers import free_port

PASSWORD = "correct horse battery staple"


async def _cli(gateway: str, home: pathlib.Path, *args: str, stdin: str = "") -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cumulo_sdk.cli", "--gateway", gateway, *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "CUMULO_HOME": str(home)},
    )
    out, _ = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    return process.returncode, out.decode()


async def test_make_run_serves_the_readme_session_and_ctrl_c_stops_everything():
    var = pathlib.Path(tempfile.mkdtemp(prefix="cumulo-run-"))
    var.chmod(0o755)
    gateway_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL", "S3_ENDPOINT")},
        "CUMULO_DEV_NATS_PORT": str(free_port()),
        "CUMULO_DEV_S3_PORT": str(free_port()),
        "CUMULO_DEV_SMTP_PORT": str(free_port()),
        "CUMULO_AUTH_GRPC_PORT": str(free_port()),
        "CUMULO_BLOB_GRPC_PORT": str(free_port()),
        "CUMULO_LIFECYCLE_GRPC_PORT": str(free_port()),
        "CUMULO_GATEWAY_PORT": str(gateway_port),
        # The README's lifecycle session: an account unused for a few seconds freezes.
        "CUMULO_LIFECYCLE_INACTIVITY": "PT4S",
        "CUMULO_LIFECYCLE_GRACE": "PT1H",
        "CUMULO_LIFECYCLE_FREEZE_REMINDERS": "",
        "CUMULO_LIFECYCLE_SWEEP_EVERY": "PT1S",
        "CUMULO_GATEWAY_ADMIN_PORT": str(free_port()),
    }
    launcher = subprocess.Popen(
        [sys.executable, "-m", "cumulo_devstack", "run", "--var", str(var / "var")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        output = ""
        while "cumulo is running" not in output:
            line = await asyncio.wait_for(asyncio.to_thread(launcher.stdout.readline), 120)
            assert line, f"the launcher stopped early:\n{output}"
            output += line
        children = psutil.Process(launcher.pid).children(recursive=True)
        assert len(children) >= 6  # nats, s3, auth, blob, lifecycle, envoy (postgres runs detached, as its own user)

        gateway = f"127.0.0.1:{gateway_port}"
        home = var / "home"
        code, out = await _cli(gateway, home, "signup", "--email", "run@example.com", "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n")
        assert code == 0, out
        code, out = await _cli(gateway, home, "login", "run@example.com", "--device-name", "laptop", stdin=PASSWORD + "\n")
        assert code == 0, out
        code, out = await _cli(gateway, home, "whoami")
        assert code == 0 and "run@example.com" in out, out
        code, out = await _cli(gateway, home, "sessions")
        assert code == 0 and "laptop" in out, out
        code, out = await _cli(gateway, home, "account", "state")
        assert code == 0 and "state        active" in out, out
        for _ in range(60):  # unused for 4 s, the next sweep freezes it
            code, out = await _cli(gateway, home, "account", "state")
            if "state        frozen" in out:
                break
            await asyncio.sleep(0.5)
        assert "state        frozen" in out and "deleted at" in out, out
        mails = []
        for _ in range(40):
            mails = [p.read_text() for p in (var / "var" / "mail").glob("*.eml")]
            if mails:
                break
            await asyncio.sleep(0.5)
        assert mails and "run@example.com" in mails[0], mails
        code, out = await _cli(gateway, home, "usage")  # any use brings it back
        assert code == 0, out
        code, out = await _cli(gateway, home, "account", "state")
        assert code == 0 and "state        active" in out, out
        code, out = await _cli(gateway, home, "logout")
        assert code == 0, out

        launcher.send_signal(signal.SIGINT)  # Ctrl-C
        rest = await asyncio.wait_for(asyncio.to_thread(launcher.communicate), 60)
        assert launcher.returncode == 0, rest
        assert "stopped" in rest[0]
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        postgres_pid_file = var / "var" / "postgres" / "postmaster.pid"
        assert not postgres_pid_file.exists()
    finally:
        if launcher.poll() is None:
            launcher.kill()
        shutil.rmtree(var, ignore_errors=True)
