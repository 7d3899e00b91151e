"""A media engine socket failure is a `MediaError`: an `OSError` under `DialerError`, not a
contacts-file error (which it was while the engine reported sockets as file errors)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import dialer_core as dc


@pytest.fixture
def held_even_port() -> Iterator[int]:
    """An even UDP port on 127.0.0.1 that a socket of this test holds."""
    held: list[socket.socket] = []
    try:
        for _ in range(100):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(s)  # odd ones too, until an even one comes, so each try gets a new port
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
            if port % 2 == 0:
                yield port
                return
        pytest.fail("the kernel handed out no even port in 100 tries")
    finally:
        for s in held:
            s.close()


def open_fails(engine: dc.MediaEngine) -> dc.MediaError:
    try:
        with pytest.raises(dc.MediaError) as e:
            engine.open()
    finally:
        engine.shutdown()
    return e.value


def test_an_rtp_port_in_use_raises_media_error(held_even_port: int) -> None:
    p = held_even_port
    # RTP takes even ports: (p, p + 1) has exactly one, p, and another socket holds it.
    err = open_fails(dc.MediaEngine(bind="127.0.0.1", ports=(p, p + 1)))
    assert isinstance(err, OSError)
    assert isinstance(err, dc.DialerError)
    assert not isinstance(err, dc.ContactsFileError)
    assert not isinstance(err, ValueError)
    assert "bind an RTP port" in str(err)
    assert f"ports {p}-{p + 1}" in str(err)
    assert "no free RTP port" in str(err)


def not_on_this_host() -> str:
    """A documentation address (RFC 5737) this host cannot bind: the first of the three TEST-NETs
    that is not assigned here (none of them is on any real host)."""
    for addr in ("192.0.2.1", "198.51.100.1", "203.0.113.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((addr, 0))
            except OSError:
                return addr
    raise AssertionError("this host has an address in every RFC 5737 TEST-NET")


def test_an_address_not_on_this_host_raises_media_error() -> None:
    not_here = not_on_this_host()
    err = open_fails(dc.MediaEngine(bind=not_here))
    assert isinstance(err, OSError)
    assert not isinstance(err, dc.ContactsFileError)
    assert f"{not_here}, any port" in str(err)
