"""`dialer serve` as a process: embedded Redis by default (data survives a restart), clean stop on
SIGTERM and SIGINT even with a live event stream open, phone numbers masked in its logs."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from api.auth import create_token
from api.embedded_redis import ping
from tests.support.api_server import api_server


def test_embedded_redis_survives_restart_and_stops_with_the_server(tmp_path: Path) -> None:
    state = tmp_path / "s"
    sock = state / "redis" / "redis.sock"
    with api_server("", state) as server:  # no --redis-url: the embedded redis-server
        assert ping(str(sock)) == "+PONG"
        token, _ = create_token(f"unix://{sock}", "admin")
        c = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"})
        r = c.post("/v1/campaigns", json={"id": "keep", "name": "Keep", "mode": "progressive", "caller_id": "0281234567"})
        assert r.status_code == 201, r.text
        c.close()
        assert server.stop() == 0
    assert ping(str(sock)) is None  # the server started it, so the server stopped it
    with api_server("", state) as server:
        c = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"})
        assert c.get("/v1/campaigns/keep").json()["name"] == "Keep"  # AOF: nothing lost
        c.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_stop_with_an_open_event_stream(redis_url: str, tmp_path: Path, sig: int) -> None:
    with api_server(redis_url, tmp_path / "s") as server:
        token, _ = create_token(redis_url, "admin")
        headers = {"Authorization": f"Bearer {token}"}
        httpx.post(server.base_url + "/v1/campaigns", headers=headers,
                   json={"id": "c1", "name": "C", "mode": "progressive", "caller_id": "0281234567"})
        ended, listening = threading.Event(), threading.Event()

        def listen() -> None:
            try:
                with httpx.stream("GET", server.base_url + "/v1/campaigns/c1/events", headers=headers, timeout=30) as r:
                    for _ in r.iter_lines():
                        listening.set()  # the stream's first frame: it is open
            except httpx.HTTPError:
                pass
            ended.set()

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        assert listening.wait(10)
        started = time.monotonic()
        code = server.stop(sig)
        took = time.monotonic() - started
        assert code == 0, server.log_text()
        assert ended.wait(5)
        assert took < 8, f"stop took {took:.1f} s"
        log = server.log_text()
        assert "Application shutdown complete" in log and "Traceback" not in log


def test_a_role_that_dies_is_started_again(redis_url: str, tmp_path: Path) -> None:
    """The CDR recorder cannot open its archive (a directory stands where the file goes): the role
    dies, is logged and started again - the API keeps answering meanwhile - and records once
    the archive can be opened."""
    state = tmp_path / "s"
    (state / "cdr.sqlite3").mkdir(parents=True)
    with api_server(redis_url, state) as server:
        deadline = time.monotonic() + 15
        while server.log_text().count("role record ended by itself") < 2:
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.1)
        log = server.log_text()
        assert "started again in 1 s" in log and "started again in 2 s" in log, log
        assert httpx.get(server.base_url + "/healthz").status_code == 200
        (state / "cdr.sqlite3").rmdir()
        deadline = time.monotonic() + 15
        while "recording into" not in server.log_text():
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.1)
        assert server.stop() == 0, server.log_text()


def test_numbers_are_masked_in_logs(redis_url: str, tmp_path: Path) -> None:
    with api_server(redis_url, tmp_path / "s", extra=["--access-log"]) as server:
        token, _ = create_token(redis_url, "admin")
        httpx.get(server.base_url + "/v1/campaigns/c1/contacts", params={"cursor": "+84901234567"},
                  headers={"Authorization": f"Bearer {token}"})
        server.stop()
        log = server.log_text()
    assert "/v1/campaigns/c1/contacts" in log
    assert "84901234567" not in log and "8490*****67" in log  # URL-encoded: %2B8490*****67


def test_redis_outage_answers_503_not_500(tmp_path: Path) -> None:
    from tests.support.redis_server import redis_server

    with redis_server(tmp_path / "r") as redis:
        with api_server(redis.url, tmp_path / "s") as server:
            token, _ = create_token(redis.url, "admin")
            headers = {"Authorization": f"Bearer {token}"}
            assert httpx.get(server.base_url + "/v1/campaigns", headers=headers).status_code == 200
            redis.stop()
            time.sleep(1.1)  # past the 1 s token cache: the token lookup itself meets the outage
            r = httpx.get(server.base_url + "/v1/campaigns", headers=headers, timeout=30)
            assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
            assert httpx.get(server.base_url + "/healthz").status_code == 503
            assert "Traceback" not in server.log_text()


def test_masking_hides_numbers_and_keeps_identifiers() -> None:
    from api.schemas import masked

    assert masked("call to +84901234567 ok") == "call to +8490*****67 ok"
    assert masked("cursor=%2B84901234567&n=0901234567") == "cursor=%2B8490*****67&n=0901****67"
    assert masked("cid/+84901234567/1") == "cid/+8490*****67/1"
    # A generated campaign id that happens to be all digits stays greppable in the logs.
    assert masked("campaign c-2273970141 partition 1: taken") == "campaign c-2273970141 partition 1: taken"
