"""The ports `make run` listens on: which a run needs (from its settings), whether they are
free, and what to tell a person when one is not (which port, who holds it, which setting
picks another, and a free one to pick)."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import socket
from collections.abc import Mapping

from cumulo_devstack.servers import free_port, listens_on
from cumulo_platform.registry import SERVICES


@dataclasses.dataclass(frozen=True)
class Port:
    number: int
    variable: str  # the setting that picks another
    component: str  # who listens on it, for people


class BadSetting(Exception):
    pass


def _port(env: Mapping[str, str], variable: str, default: int, component: str) -> Port:
    raw = env.get(variable, str(default))
    number = int(raw) if raw.strip().isdigit() else 0
    if not 1 <= number <= 65535:
        raise BadSetting(f"{variable} must be a port number from 1 to 65535, not {raw!r}.")
    return Port(number, variable, component)


def planned_ports(env: Mapping[str, str]) -> dict[str, Port]:
    """Every TCP port this run will listen on, by part. PostgreSQL (pgserver) listens on a Unix
    socket only: it has none."""
    ports: dict[str, Port] = {}
    if "NATS_URL" not in env:
        ports["nats"] = _port(env, "CUMULO_DEV_NATS_PORT", 4222, "the embedded NATS server")
    if "S3_ENDPOINT" not in env:
        ports["s3"] = _port(env, "CUMULO_DEV_S3_PORT", 9000, "the embedded S3 server")
    if "CUMULO_LIFECYCLE_SMTP_HOST" not in env:
        ports["smtp"] = _port(env, "CUMULO_DEV_SMTP_PORT", 2525, "the mail catcher")
    if "CUMULO_LIFECYCLE_SMS_WEBHOOK_URL" not in env:
        ports["sms"] = _port(env, "CUMULO_DEV_SMS_PORT", 2526, "the SMS catcher")
    for name, info in SERVICES.items():
        ports[name] = _port(env, f"CUMULO_{name.upper()}_GRPC_PORT", info.port, f"the {name} service")
        ports[f"{name} health"] = _port(env, f"CUMULO_{name.upper()}_HEALTH_PORT", info.health_port, f"the {name} service's health checks")
        ports[f"{name} metrics"] = _port(env, f"CUMULO_{name.upper()}_METRICS_PORT", info.metrics_port, f"the {name} service's metrics")
    ports["gateway"] = _port(env, "CUMULO_GATEWAY_PORT", 8080, "the gateway")
    ports["gateway admin"] = _port(env, "CUMULO_GATEWAY_ADMIN_PORT", 9901, "the gateway's admin interface")
    return ports


def port_variables() -> list[str]:
    """The setting of every port a run with the embedded servers listens on (tests pick free
    ones for all of them)."""
    return [port.variable for port in planned_ports({}).values()]


def port_unusable(port: int, host: str = "127.0.0.1") -> OSError | None:
    """Why a server could not listen on host:port now, or None when it could. Binds and
    listens as the servers do (SO_REUSEADDR: a port an earlier run left in TIME_WAIT is free)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(1)
        except OSError as exc:
            return exc
    return None


def port_trouble(error: OSError) -> str:
    """`port_unusable`'s answer in words."""
    if error.errno == errno.EADDRINUSE:
        return "is in use by another program"
    if error.errno == errno.EACCES:
        return "needs privileges this user does not have"
    return f"cannot be used ({error.strerror or error})"


def port_holder(port: int) -> str | None:
    """The program listening on the port ("nats-server, pid 4242"), when this user may see it."""
    import psutil

    try:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port and connection.pid:
                return f"{psutil.Process(connection.pid).name()}, pid {connection.pid}"
    except psutil.Error:
        pass
    return None


def _port_near(number: int, avoid: set[int]) -> int:
    for candidate in range(number + 1, min(number + 200, 65536)):
        if candidate not in avoid and port_unusable(candidate) is None:
            return candidate
    return free_port()


def _pick_others(moves: list[Port], avoid: set[int]) -> list[str]:
    """How to run again with other ports for these (free now, and not wanted by another part)."""
    settings, gateway = [], None
    for port in moves:
        number = _port_near(port.number, avoid)
        avoid.add(number)
        settings.append(f"{port.variable}={number}")
        if port.variable == "CUMULO_GATEWAY_PORT":
            gateway = number
    lines = [f"Pick {'another port' if len(moves) == 1 else 'other ports'}, e.g.:", f"  {' '.join(settings)} make run"]
    if gateway is not None:
        lines += ["and point the CLI at that gateway:", f"  export CUMULO_GATEWAY=127.0.0.1:{gateway}"]
    return lines


def port_conflicts(ports: dict[str, Port]) -> list[str]:
    """What stands in the way of listening on the planned ports, for people (empty: nothing)."""
    problems: list[str] = []
    moves: list[Port] = []
    wanted: dict[int, Port] = {}
    for port in ports.values():
        if port.number in wanted:
            first = wanted[port.number]
            problems.append(f"  port {port.number} is wanted twice: by {first.component} ({first.variable}) and {port.component} ({port.variable})")
            moves.append(port)
            continue
        wanted[port.number] = port
        error = port_unusable(port.number)
        if error is not None:
            holder = port_holder(port.number)
            problems.append(f"  port {port.number} ({port.component}, {port.variable}) {port_trouble(error)}{f' ({holder})' if holder else ''}")
            moves.append(port)
    if not problems:
        return []
    lines = ["cumulo cannot start; nothing was started.", *problems, *_pick_others(moves, set(wanted))]
    if len(moves) == len(ports):
        lines.append("(All of them are taken: is an earlier `make run` still going? Ctrl-C in its terminal stops it.)")
    return lines


def taken_meanwhile(port: Port, pid: int | None, ports: Mapping[str, Port]) -> list[str]:
    """If another program holds `port` now (it took it after the check, before the part with
    `pid` could listen), the lines that say so and how to pick another; otherwise none."""
    if port_unusable(port.number) is None or (pid and listens_on(pid, port.number)):
        return []
    holder = port_holder(port.number)
    return [
        f"Port {port.number} was taken by another program{f' ({holder})' if holder else ''} while cumulo was starting.",
        *_pick_others([port], {p.number for p in ports.values()}),
    ]
