"""`make run` fails loudly: a port another program holds stops it before it starts anything, and
a port taken after that check stops it as soon as the part that wanted it fails; either way it
names the port and the setting that picks another, and leaves no process behind. Ctrl-C while
it starts stops what it started."""

import contextlib
import fcntl
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import psutil
import pytest

from cumulo_devstack.ports import port_unusable, port_variables
from cumulo_devstack.servers import free_ports

PORT_VARIABLES = port_variables()


@pytest.fixture
def var() -> Iterator[pathlib.Path]:
    folder = pathlib.Path(tempfile.mkdtemp(prefix="cumulo-run-"))
    folder.chmod(0o755)  # PostgreSQL runs as its own user and must reach its folder
    yield folder / "var"
    shutil.rmtree(folder, ignore_errors=True)


def _environ() -> dict[str, str]:
    """Every port make run listens on, free and distinct; the external servers unset."""
    external = ("DATABASE_URL", "NATS_URL", "S3_ENDPOINT", "CUMULO_LIFECYCLE_SMTP_HOST", "CUMULO_LIFECYCLE_SMS_WEBHOOK_URL", "CUMULO_IDENTITY_DIR")
    return {
        **{k: v for k, v in os.environ.items() if k not in external},
        **{variable: str(port) for variable, port in zip(PORT_VARIABLES, free_ports(len(PORT_VARIABLES)), strict=True)},
    }


def _launch(var: pathlib.Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cumulo_devstack", "run", "--var", str(var)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@contextlib.contextmanager
def _taken(port: int) -> Iterator[None]:
    """Another program listening on the port."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield


def _read_until(launcher: subprocess.Popen[str], prefix: str) -> str:
    output = ""
    while True:
        line = launcher.stdout.readline()
        assert line, f"the launcher stopped early:\n{output}\n{launcher.stderr.read()}"
        output += line
        if line.startswith(prefix):
            return output


def _left_behind(var: pathlib.Path, env: dict[str, str], taken: int) -> list[str]:
    """Processes of this run still there: one that names its folder (NATS, S3, Envoy), one on
    one of its ports (a service), or its PostgreSQL."""
    left = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE and str(var) in " ".join(process.info["cmdline"] or []):
                left.append(f"pid {process.pid}: {' '.join(process.info['cmdline'])}")
    left += [f"{variable}={env[variable]} in use" for variable in PORT_VARIABLES if int(env[variable]) != taken and port_unusable(int(env[variable]))]
    if (var / "postgres" / "postmaster.pid").exists():
        left.append("postgres")
    return left


@pytest.mark.parametrize("variable", ["CUMULO_GATEWAY_PORT", "CUMULO_BLOB_GRPC_PORT"])
def test_make_run_with_a_port_taken_starts_nothing_and_names_the_port_and_its_setting(var: pathlib.Path, variable: str):
    env = _environ()
    port = int(env[variable])
    with _taken(port):
        launcher = _launch(var, env)
        out, err = launcher.communicate(timeout=120)
        assert launcher.returncode == 1, (out, err)
        assert f"port {port}" in err and f"{variable})" in err and "is in use by another program" in err, err
        assert f"{variable}=" in err and "make run" in err, err  # how to pick another
        assert "nothing was started" in err, err
        assert "cumulo is running" not in out
        assert not (var / "postgres").exists() and not (var / "logs").exists()
        assert not _left_behind(var, env, port)


def test_make_run_says_which_setting_is_not_a_port(var: pathlib.Path):
    env = {**_environ(), "CUMULO_GATEWAY_PORT": "80a"}
    launcher = _launch(var, env)
    out, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 2
    assert "CUMULO_GATEWAY_PORT must be a port number" in err and "'80a'" in err, err
    assert not (var / "postgres").exists()


@pytest.mark.timeout(600)
def test_make_run_fails_loudly_when_the_gateway_port_is_taken_after_the_check(var: pathlib.Path):
    env = _environ()
    port = int(env["CUMULO_GATEWAY_PORT"])
    launcher = _launch(var, env)
    try:
        _read_until(launcher, "nats ")  # the ports were checked; the gateway starts after every service
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(_taken(port))
            except OSError:
                pytest.skip("the gateway was up before the test could take its port")
            out, err = launcher.communicate(timeout=540)
        assert launcher.returncode == 1, (out, err)
        assert "cumulo is running" not in out
        assert f"the gateway stopped before serving on port {port} (CUMULO_GATEWAY_PORT)" in err, err
        assert "Last lines of" in err and "Address already in use" in err, err  # Envoy's log says why
        assert f"Port {port} was taken by another program" in err and "CUMULO_GATEWAY_PORT=" in err, err
        assert "stopped" in out
        assert not _left_behind(var, env, port)
    finally:
        if launcher.poll() is None:
            launcher.kill()


@pytest.mark.timeout(600)
def test_ctrl_c_while_make_run_starts_stops_what_it_started(var: pathlib.Path):
    env = _environ()
    launcher = _launch(var, env)
    try:
        output = _read_until(launcher, "auth ")  # blob is starting now
        launcher.send_signal(signal.SIGINT)
        out, err = launcher.communicate(timeout=540)
        output += out
        if "cumulo is running" in output:  # everything came up before the signal did: a plain stop
            assert launcher.returncode == 0, (output, err)
        else:
            assert launcher.returncode == 128 + signal.SIGINT, (output, err)
            assert "interrupted while starting" in output
        assert "Traceback" not in err, err
        assert "stopped" in output
        assert not _left_behind(var, env, taken=0)
    finally:
        if launcher.poll() is None:
            launcher.kill()


def test_a_second_make_run_on_the_same_data_folder_starts_nothing(var: pathlib.Path):
    """The hint for a taken port is to move the ports; a second run on the same folder must
    still refuse, whatever ports it has (two PostgreSQL on one folder would ruin it)."""
    var.mkdir(parents=True)
    with (var / ".run.lock").open("a+") as first:  # what a running launcher holds
        fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
        first.write("4242")
        first.flush()
        env = _environ()
        launcher = _launch(var, env)
        out, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 1, (out, err)
    assert "another `make run` (pid 4242) uses the data folder" in err and str(var) in err, err
    assert "--var" in err and "nothing was started" in err, err
    assert not (var / "postgres").exists() and not (var / "logs").exists()
    assert not _left_behind(var, env, taken=0)
