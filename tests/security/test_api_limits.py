"""What the API accepts before a route runs (api/limits.py): the token is checked before a byte
of the body is read, bodies are bounded (413), uploads keep the disk's reserve (507), event
streams are bounded per token (429), and /metrics needs a token.

Before: a 300 MB JSON body to /v1/tokens with no token was read and parsed whole (the process
carrying every call peaked at 656 MB), then refused; nothing bounded uploads or streams; /metrics
showed campaign ids and volumes to anyone."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.auth import create_token
from api.embedded_redis import EmbeddedRedis
from tests.api.conftest import SEED, Client
from tests.support.api_server import ApiServer, api_server


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def raw_request(base_url: str, head: str, body_part: bytes, timeout: float = 5.0) -> bytes:
    """Send a request's head and the start of its body, then read what the server answers
    without sending the rest (a server that waits for the whole body answers nothing)."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(head.encode() + b"\r\n\r\n")
        try:
            s.sendall(body_part)
        except OSError:
            pass  # the server may close early: what it answered is still to read
        s.settimeout(timeout)
        out = b""
        try:
            while True:  # the head, then as much body as its Content-Length says
                head, sep, body = out.partition(b"\r\n\r\n")
                if sep:
                    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    if len(body) >= length:
                        break
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return out


def test_an_unauthenticated_huge_body_is_refused_before_it_is_read(server: ApiServer) -> None:
    before = rss_kb(server.proc.pid)
    head = ("POST /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 300000000")
    answer = raw_request(server.base_url, head, b'{"role": "' + b"a" * (4 << 20))
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert rss_kb(server.proc.pid) - before < 30_000  # kB: nothing of the 300 MB was buffered


def test_a_bad_token_is_refused_before_the_body(server: ApiServer) -> None:
    head = ("PUT /v1/suppression-lists/dnc?country=VN HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dlr_forged\r\n"
            "Content-Length: 100000000")
    answer = raw_request(server.base_url, head, b"0912345678\n" * 1000)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


def test_a_json_body_over_the_limit_is_413_before_it_is_read(server: ApiServer, admin: httpx.Client) -> None:
    token = admin.headers["Authorization"]
    head = f"POST /v1/campaigns HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\nContent-Length: 300000000"
    answer = raw_request(server.base_url, head, b"{" * 65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"at most 1,048,576 bytes" in answer


def test_a_chunked_body_is_cut_off_at_the_limit(admin: httpx.Client) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(64):  # 2 MB, no Content-Length
            yield b"x" * 32768

    r = admin.post("/v1/campaigns", content=body(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert "at most 1,048,576 bytes" in r.json()["detail"]
    ok = admin.post("/v1/campaigns", json=SEED)  # the same route with a normal body still works
    assert ok.status_code == 201, ok.text


def test_metrics_need_an_operator_token(server: ApiServer, client: Client) -> None:
    assert httpx.get(server.base_url + "/metrics").status_code == 401
    assert client("agent", agent="a1").get("/metrics").status_code == 403
    r = client("supervisor").get("/metrics")
    assert r.status_code == 200 and "dialer_api_request_duration_seconds" in r.text
    assert httpx.get(server.base_url + "/healthz").status_code == 200  # liveness stays open


@pytest.fixture(scope="module")
def strict(redis_instance: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """A node with small limits: 64 kB uploads, 2 event streams per token."""
    with api_server(redis_instance.url, tmp_path_factory.mktemp("strict"),
                    extra=["--max-upload", "64k", "--streams-per-token", "2"]) as s:
        yield s


@pytest.fixture(scope="module")
def no_disk(redis_instance: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """A node whose disk reserve is more than any disk has free."""
    with api_server(redis_instance.url, tmp_path_factory.mktemp("nodisk"), extra=["--disk-reserve", "1000T"]) as s:
        yield s


def token_for(redis_url: str, role: str = "admin") -> dict[str, str]:
    token, _ = create_token(redis_url, role, f"{role}-limits")
    return {"Authorization": f"Bearer {token}"}


def test_an_upload_over_the_cap_is_413_and_one_under_it_loads(strict: ApiServer, redis_url: str) -> None:
    h = token_for(redis_url)
    big = b"".join(b"09%08d\n" % i for i in range(10_000))  # 110 kB
    r = httpx.put(strict.base_url + "/v1/suppression-lists/dnc", params={"country": "VN"}, content=big, headers=h)
    assert r.status_code == 413, r.text
    assert "an upload may be at most 65,536 bytes" in r.json()["detail"]
    small = b"".join(b"09%08d\n" % i for i in range(1_000))
    r = httpx.put(strict.base_url + "/v1/suppression-lists/dnc", params={"country": "VN"}, content=small, headers=h)
    assert r.status_code == 200 and r.json()["total"] == 1_000, r.text


def test_an_upload_that_would_eat_the_disk_reserve_is_507_and_leaves_nothing(no_disk: ApiServer, redis_url: str,
                                                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    h = token_for(redis_url)
    r = httpx.put(no_disk.base_url + "/v1/suppression-lists/dnc", params={"country": "VN"}, content=b"0912345678\n", headers=h)
    assert r.status_code == 507, r.text
    assert "kept for Redis and the CDR archive" in r.json()["detail"]
    uploads = no_disk.log.parent / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_event_streams_are_bounded_per_token(strict: ApiServer, redis_url: str) -> None:
    h = token_for(redis_url)
    assert httpx.post(strict.base_url + "/v1/campaigns", json={**SEED, "id": "st"}, headers=h).status_code == 201
    url = strict.base_url + "/v1/campaigns/st/events"
    with httpx.Client(headers=h, timeout=10.0) as c:
        with c.stream("GET", url) as one, c.stream("GET", url) as two:
            assert one.status_code == two.status_code == 200
            third = c.get(url)
            assert third.status_code == 429, third.text
            assert "already holds 2 event streams" in third.json()["detail"]
            with httpx.Client(headers=token_for(redis_url, "supervisor"), timeout=10.0) as o:
                with o.stream("GET", url) as theirs:
                    assert theirs.status_code == 200  # the cap is per token: others still stream
        # Both closed: their slots come back (the server notices a closed stream within a second).
        deadline = time.monotonic() + 10
        while True:
            with c.stream("GET", url) as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "the closed streams' slots never came back"
            time.sleep(0.5)


def test_a_contact_file_with_one_unbounded_field_is_refused_with_its_line(admin: httpx.Client) -> None:
    """The CSV reader bounds a row (1 MiB): an opening quote never closed made the rest of the
    file one field, held whole in the process carrying every call."""
    assert admin.post("/v1/campaigns", json={**SEED, "id": "uf", "exclusions": []}).status_code == 201
    body = b'phone,name\n0901234567,"' + b"x" * (24 << 20)
    r = admin.post("/v1/campaigns/uf/contacts", content=body, headers={"Content-Type": "text/csv"})
    assert r.status_code == 422, r.text
    assert "a row longer than 1048576 bytes" in r.text and "line 2" in r.text  # before: 24 MB stored as one attribute
