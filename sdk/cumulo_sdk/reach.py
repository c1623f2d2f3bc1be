"""Waiting for the connection to the gateway. The channel's own attempts are watched: when one
fails and the address refuses a plain TCP connection (nothing listens there), waiting longer
cannot help and the wait ends at once; an address that takes no connection and refuses none
(a host that is down, a firewall that drops) is waited for until the caller's deadline."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable

import grpc

# The targets grpc takes that name one host and port: "host:port", "[::1]:port", and the
# same behind "dns:///". Others (unix sockets, several addresses) are only waited for.
_HOST_PORT = re.compile(r"\[(?P<v6>[^\]]+)\]:(?P<v6_port>\d+)|(?P<host>[^:/\[\]]+):(?P<port>\d+)")


class ConnectionRefused(Exception):
    """Every address of the target refused the connection."""


class HandshakeFailed(Exception):
    """Something listens but the connection cannot be made (its certificate is not trusted,
    one side speaks TLS and the other not): waiting longer cannot help either."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def host_and_port(target: str) -> tuple[str, int] | None:
    match = _HOST_PORT.fullmatch(target.removeprefix("dns:///"))
    if match is None:
        return None
    return (match["v6"] or match["host"]), int(match["v6_port"] or match["port"])


async def refused(target: str) -> bool:
    """Whether every address `target` names refuses a TCP connection now."""
    place = host_and_port(target)
    if place is None:
        return False
    loop = asyncio.get_running_loop()
    try:
        addresses = await loop.getaddrinfo(*place, type=socket.SOCK_STREAM)
    except OSError:
        return False  # a name not known (yet): grpc's own attempts say more
    for family, kind, protocol, _, address in addresses:
        probe = socket.socket(family, kind, protocol)
        probe.setblocking(False)
        try:
            await loop.sock_connect(probe, address)
        except ConnectionRefusedError:
            continue
        except OSError:
            return False
        finally:
            probe.close()
        return False  # something listens: the channel's next attempt may get through
    return bool(addresses)


async def wait_ready(
    channel: grpc.aio.Channel, target: str, diagnose: Callable[[], Awaitable[tuple[str, str] | None]] | None = None
) -> None:
    """Until the channel is ready; ConnectionRefused as soon as a failed attempt turns out to
    have been refused, HandshakeFailed when `diagnose` finds what else stops it. The caller
    bounds the wait."""
    state = channel.get_state(try_to_connect=True)
    while state != grpc.ChannelConnectivity.READY:
        if state == grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            if await refused(target):
                raise ConnectionRefused(target)
            problem = await diagnose() if diagnose is not None else None
            if problem:
                raise HandshakeFailed(*problem)
        await channel.wait_for_state_change(state)
        state = channel.get_state(try_to_connect=True)
