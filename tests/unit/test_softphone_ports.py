"""The test harness's checks of UDP ports: that sipp holds its port (tests/softphone.py) and that a
port is free to hand to sipp (tests/sipp.py).

The check used to bind the port itself, every 10 ms while sipp started: a probe landing on sipp's
own bind made sipp exit with "Address already in use" (a CI run failed so, in test_acd.py).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.sipp import _bindable, udp_port_bound


@pytest.fixture
def bound() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_given_a_socket_on_the_port_when_probed_then_the_port_is_taken(bound: socket.socket) -> None:
    assert udp_port_bound(bound.getsockname()[1], "127.0.0.1")


def test_given_a_socket_on_every_address_when_probed_for_loopback_then_the_port_is_taken() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", 0))
        assert udp_port_bound(sock.getsockname()[1], "127.0.0.1")


def test_given_the_socket_closed_when_probed_then_the_port_is_free(bound: socket.socket) -> None:
    port = bound.getsockname()[1]
    bound.close()
    assert not udp_port_bound(port, "127.0.0.1")


def test_given_a_socket_on_another_address_when_probed_for_loopback_then_the_port_is_free() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.2", 0))
        assert not udp_port_bound(sock.getsockname()[1], "127.0.0.1")


def test_when_probing_then_the_port_is_never_bound_by_the_probe(
    bound: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = bound.getsockname()[1]
    binds: list[object] = []

    class Recording(socket.socket):
        def bind(self, address: object) -> None:
            binds.append(address)
            super().bind(address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "socket", Recording)
    udp_port_bound(port, "127.0.0.1")
    udp_port_bound(port + 1 if port < 65535 else port - 1, "127.0.0.1")
    _bindable("0.0.0.0", range(port, port + 4))
    assert binds == []


def test_given_a_socket_on_one_of_the_ports_when_checking_a_range_then_it_is_not_free(bound: socket.socket) -> None:
    port = bound.getsockname()[1]
    assert not _bindable("0.0.0.0", range(port - 2, port + 2))
    assert not _bindable("127.0.0.1", range(port, port + 1))
