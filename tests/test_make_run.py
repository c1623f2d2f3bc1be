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

from cumulo_devstack.ports import port_variables
from cumulo_devstack.servers import free_ports

PASSWORD = "correct horse battery staple"


async def _cli(gateway: str, home: pathlib.Path, *args: str, stdin: str = "", ca: pathlib.Path | None = None) -> tuple[int, str]:
    """The CLI as the README runs it: CUMULO_CA names make run's development CA."""
    environ = {k: v for k, v in os.environ.items() if k not in ("CUMULO_CA", "CUMULO_PLAINTEXT")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cumulo_sdk.cli", "--gateway", gateway, *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**environ, "CUMULO_HOME": str(home), **({"CUMULO_CA": str(ca)} if ca else {})},
    )
    out, _ = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    return process.returncode, out.decode()


async def test_make_run_serves_the_readme_session_and_ctrl_c_stops_everything():
    var = pathlib.Path(tempfile.mkdtemp(prefix="cumulo-run-"))
    var.chmod(0o755)
    # Every port the launcher listens on, distinct (it refuses to start otherwise).
    variables = port_variables()
    ports = dict(zip(variables, map(str, free_ports(len(variables))), strict=True))
    gateway_port = int(ports["CUMULO_GATEWAY_PORT"])
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL", "S3_ENDPOINT", "CUMULO_IDENTITY_DIR")},
        **ports,
    }
    launcher = subprocess.Popen(
        [sys.executable, "-m", "cumulo_devstack", "run", "--var", str(var / "var")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        output = ""
        while "Ctrl-C stops everything" not in output:
            line = await asyncio.wait_for(asyncio.to_thread(launcher.stdout.readline), 120)
            assert line, f"the launcher stopped early:\n{output}"
            output += line
        children = psutil.Process(launcher.pid).children(recursive=True)
        assert len(children) >= 6  # nats, s3, auth, blob, lifecycle, envoy (postgres runs detached, as its own user)

        gateway = f"127.0.0.1:{gateway_port}"
        home = var / "home"
        ca = var / "var" / "tls" / "ca.pem"
        assert f"export CUMULO_CA={ca}" in output, output  # the CA it made, as the README sets it
        code, out = await _cli(gateway, home, "signup", "--email", "run@example.com", "--birth-date", "1990-05-17", "--accept-terms", stdin=PASSWORD + "\n", ca=ca)
        assert code == 0, out
        code, out = await _cli(gateway, home, "login", "run@example.com", "--device-name", "laptop", stdin=PASSWORD + "\n", ca=ca)
        assert code == 0, out
        code, out = await _cli(gateway, home, "whoami", ca=ca)
        assert code == 0 and "run@example.com" in out, out
        code, out = await _cli(gateway, home, "sessions", ca=ca)
        assert code == 0 and "laptop" in out, out
        code, out = await _cli(gateway, home, "account", "state", ca=ca)
        assert code == 0 and "state        active" in out, out
        # The public port speaks only TLS: a plaintext client is refused, and told why.
        code, out = await _cli(gateway, home, "--plaintext", "whoami", ca=ca)
        assert code == 1 and "speaks TLS" in out and "GATEWAY_TLS_MISMATCH" in out, out
        # Without the CA the certificate is not trusted: said at once, not a hang.
        code, out = await _cli(gateway, home, "whoami")
        assert code == 1 and "GATEWAY_NOT_TRUSTED" in out and "CUMULO_CA" in out, out
        code, out = await _cli(gateway, home, "logout", ca=ca)
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
