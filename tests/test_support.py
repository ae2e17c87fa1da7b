"""The suite's own guard: nothing a test does may leave the machine."""

from __future__ import annotations

import socket

import pytest

from tests.support import OutboundNetworkBlocked


def test_a_connection_past_loopback_is_refused_before_any_packet() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(OutboundNetworkBlocked):
        sock.connect(("192.0.2.1", 443))  # TEST-NET-1: never routable, so nothing is sent even if unguarded


def test_loopback_stays_open_for_the_local_services() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        assert sock.connect_ex(("127.0.0.1", 6379)) == 0  # the machine's Redis
