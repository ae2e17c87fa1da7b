"""Helpers shared across test packages (fixtures live in conftest.py; plain helpers live here)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from accounts.models import User
from organizations.models import Organization


@dataclass
class Triad:
    """The healthchecks-style cast: an organization with an owner, an admin and a member, and an
    outsider with an organization of their own (every view's tests include the outsider)."""

    org: Organization
    owner: User
    admin: User
    member: User
    outsider: User
    outsider_org: Organization


class OutboundNetworkBlocked(RuntimeError):
    pass


def _allowed(address: Any) -> bool:
    """Loopback and Unix sockets only: the local PostgreSQL, Redis, mock providers and our servers."""
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths (PostgreSQL's socket)
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost would need DNS: not a local service


def block_outbound_network() -> None:
    """Make any connection to a non-loopback address fail loudly, so no test reaches the internet."""
    original = socket.socket.connect
    original_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> None:
        if not _allowed(address):
            raise OutboundNetworkBlocked(f"tests may not connect to {address!r}")
        original(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _allowed(address):
            raise OutboundNetworkBlocked(f"tests may not connect to {address!r}")
        return original_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
