"""The `dialer` command: sub-commands, the embedded Redis, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.embedded_redis import ping

ROOT = Path(__file__).resolve().parents[2]


def dialer(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_")}
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, env=e, capture_output=True, text=True,
                          timeout=timeout)


def test_help_lists_the_subcommands_and_each_has_help() -> None:
    out = dialer("--help")
    assert out.returncode == 0
    subs = ["import", "suppress", "queue", "contact", "contacts", "sample", "normalize", "simulate", "demo"]
    for s in subs:
        assert s in out.stdout
        assert dialer(s, "--help").returncode == 0


def test_embedded_redis_keeps_data_across_runs_and_stops_on_exit(tmp_path: Path) -> None:
    state = tmp_path / "st"
    lst = tmp_path / "l.txt"
    lst.write_text("0901234567\n0901234568\n")
    out = dialer("--state-dir", str(state), "import", str(lst), "--campaign", "c1", "--country", "VN", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["accepted"] == 2
    sock = str(state / "redis" / "redis.sock")
    assert ping(sock) is None  # the child was stopped on exit
    assert (state / "redis" / "appendonlydir").is_dir()  # AOF on
    out = dialer("queue", "c1", "--json", env={"DIALER_STATE_DIR": str(state)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["ready"] == 2  # reused the data
    assert ping(sock) is None


def test_given_redis_url_is_used(redis_url: str, tmp_path: Path) -> None:
    lst = tmp_path / "l.txt"
    lst.write_text("0901234567\n")
    home = tmp_path / "home"
    out = dialer("--redis-url", redis_url, "import", str(lst), "--campaign", "c9", "--country", "VN", "-q", env={"HOME": str(home)})
    assert out.returncode == 0, out.stderr
    assert "accepted" in out.stdout
    assert not home.exists()  # no embedded server, no default state directory


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import", "{missing}", "--campaign", "c1", "--country", "VN"], "cannot read"),
        (["import", "{list}", "--campaign", "c1", "--country", "QQ"], "unknown country"),
        (["normalize", "12", "--country", "VN"], "12"),
    ],
)
def test_errors_are_one_clear_line_and_exit_1(redis_url: str, tmp_path: Path, args: list[str], message: str) -> None:
    lst = tmp_path / "l.txt"
    lst.write_text("0901234567\n")
    args = [a.format(missing=tmp_path / "nope.csv", list=lst) for a in args]
    out = dialer("--redis-url", redis_url, *args)
    assert out.returncode == 1
    assert message in out.stderr and "Traceback" not in out.stderr


def test_redis_down_is_a_clear_error(tmp_path: Path) -> None:
    from tests.support.redis_server import free_port

    out = dialer("--redis-url", f"redis://127.0.0.1:{free_port()}", "queue", "c1")
    assert out.returncode == 1
    assert "unavailable" in out.stderr and "Traceback" not in out.stderr


def test_the_demos_run_end_to_end() -> None:
    """`dialer demo` (the embedded Redis, one node), `dialer demo --cluster` (a local Redis
    Cluster, two nodes) and `dialer demo --agents`, run at the same time: each mostly waits on its
    campaign's timers (ring timeouts, the retry delay, talk times), so together they take the
    time of the longest."""
    import re
    from concurrent.futures import ThreadPoolExecutor

    # The first calling window lasts 110 s: 300 subscribers and their retries are done within it.
    seed = ["--rows", "300", "--cps", "50"]
    with ThreadPoolExecutor(3) as pool:
        single, cluster, agents = pool.map(lambda args: dialer("demo", *args, timeout=330),
                                           [seed, ["--cluster", *seed], ["--agents", "3", "--rows", "100", "--seconds", "15"]])
    assert agents.returncode == 0, agents.stdout + agents.stderr
    figures = {k.strip(): v for k, v in re.findall(r"^ {3,}(\S[^\n]*?)\s{2,}(\S[^\n]*)$", agents.stdout, re.M)}
    answered = int(figures["answered"].replace(",", ""))
    connected = int(figures["connected to an agent"].replace(",", ""))
    abandoned = int(figures["abandoned (identification message)"].split()[0].replace(",", ""))
    assert answered >= 3 and connected + abandoned == answered
    assert "agreed" in figures["dispositions"] or "declined" in figures["dispositions"]
    for out in (single, cluster):
        assert out.returncode == 0, out.stdout + out.stderr
        assert "results (campaign completed)" in out.stdout, out.stdout
        figures = {k.strip(): v for k, v in re.findall(r"^ {3,}(\S[^\n]*?)\s{2,}(\S[^\n]*)$", out.stdout, re.M)}
        dialled = int(figures["subscribers dialled"].replace(",", ""))
        agreed = int(figures["agreed (pressed 1)"].replace(",", ""))
        assert 250 <= dialled <= 300 and agreed > 50
        assert figures["SMS sent / delivered"].startswith(f"{agreed:,} / {agreed:,}")
        csv = Path(re.findall(r"every call's record: (\S+)", out.stdout)[0])
        assert csv.read_text().count("\n") > dialled
        csv.unlink()
        assert not re.findall(r"state kept", out.stdout)
    assert "Redis Cluster ready: primaries" in cluster.stdout, cluster.stdout
    # On the cluster both nodes dialled: the six partitions are split between them, and each
    # node's CDR archive holds every record.
    figures = {k.strip(): v for k, v in re.findall(r"^ {3,}(\S[^\n]*?)\s{2,}(\S[^\n]*)$", cluster.stdout, re.M)}
    taken = [set(re.findall(r"\d+", figures[f"node {n}"].split(";")[0])) for n in "ab"]
    assert taken[0] and taken[1] and taken[0] | taken[1] == {str(p) for p in range(6)}, figures
    assert "DIFFERENT" not in figures["CDR archives (records)"], figures


def test_ctrl_c_stops_an_import_between_batches_and_running_it_again_completes_it(redis_url: str, tmp_path: Path) -> None:
    import signal

    lst = tmp_path / "big.csv"
    assert dialer("sample", str(lst), "--rows", "800000", "--invalid-ratio", "0", "--duplicate-ratio", "0").returncode == 0
    args = [sys.executable, "-m", "api.cli", "--redis-url", redis_url, "import", str(lst), "--campaign", "big", "--country", "VN"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the first progress line: the import is under way
        assert first.startswith("import: "), first
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "PARTIAL import" in out and "interrupted" in err and "Traceback" not in err, (out, err)
    loaded = int(out.split("accepted")[1].split()[0].replace(",", ""))
    assert 0 < loaded < 800_000
    again = dialer("--redis-url", redis_url, "import", str(lst), "--campaign", "big", "--country", "VN", "--json", "-q")
    report = json.loads(again.stdout)
    assert report["duplicates"] == loaded
    assert report["accepted"] + report["duplicates"] + report["excluded"] == 800_000


def test_an_unknown_campaign_is_named_and_not_created(redis_url: str, r) -> None:  # type: ignore[no-untyped-def]
    out = dialer("--redis-url", redis_url, "queue", "typo")
    assert out.returncode == 1 and "no campaign 'typo'" in out.stderr
    assert r.dbsize() == 0


def test_two_dialers_on_one_state_dir_share_one_embedded_redis(tmp_path: Path) -> None:
    from api.embedded_redis import EmbeddedRedis

    a, b = EmbeddedRedis(tmp_path / "st"), EmbeddedRedis(tmp_path / "st")
    assert a.start() == b.start()
    assert a.owned and not b.owned  # the second reused the first one's server
    b.stop()
    assert ping(str(a.socket_path)) == "+PONG"
    a.stop()
    assert ping(str(a.socket_path)) is None


def test_contacts_are_written_as_csv(redis_url: str, tmp_path: Path) -> None:
    lst = tmp_path / "l.csv"
    lst.write_text("phone,name\n0901234567,An\n0901234568,Binh\n")
    assert dialer("--redis-url", redis_url, "import", str(lst), "--campaign", "cx", "--country", "VN", "-q").returncode == 0
    out = dialer("--redis-url", redis_url, "contacts", "cx", "--state", "ready")
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    assert rows[0] == "number,state,attempts,last_outcome,time,agent,name"
    assert sorted(rows[1:]) == ["+84901234567,ready,0,,,,An", "+84901234568,ready,0,,,,Binh"]
    assert dialer("--redis-url", redis_url, "contacts", "cx", "--limit", "1").stdout.count("\n") == 2


def test_simulate_prints_the_grid_and_writes_the_plot_and_json(tmp_path: Path) -> None:
    png, js = tmp_path / "grid.png", tmp_path / "grid.json"
    p = dialer("simulate", "--quick", "--hours", "0.5", "--plot", str(png), "--json", str(js))
    assert p.returncode == 0, p.stderr
    assert "predictive held the cap in every scenario: every 86400 s window of the 0.5 h day" in p.stdout
    assert "vicidial_hard_limit" in p.stdout and "mean occupancy" in p.stdout
    assert "60/60 days" in p.stderr, "progress is shown on stderr"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cells = json.loads(js.read_text())
    assert len(cells) == 60 and {c["policy"] for c in cells} == {
        "predictive", "progressive", "fixed_ratio", "vicidial_hard_limit", "vicidial_average", "erlang_b"
    }
    assert all(0.0 <= c["occupancy"] <= 1.0 for c in cells)


def test_simulate_policy_choice_and_bad_option() -> None:
    p = dialer("simulate", "--quick", "--hours", "0.25", "--policy", "progressive", "--no-plot", "-q")
    assert p.returncode == 0, p.stderr
    assert "predictive" not in p.stdout and p.stderr == ""
    p = dialer("simulate", "--quick", "--hours", "0.25", "--days", "2", "--window", "3600", "--policy", "predictive",
               "--no-plot", "-q")
    assert p.returncode == 0, p.stderr
    assert "every 3600 s window of the 2 days of 0.25 h" in p.stdout
    p = dialer("simulate", "--policy", "magic")
    assert p.returncode == 2 and "invalid choice" in p.stderr


@pytest.mark.parametrize("args, message", [
    (["--named-trunk", "b=127.0.0.1:5070"], "--named-trunk needs --trunk"),
    (["--trunk", "127.0.0.1:5060", "--named-trunk", "B!=127.0.0.1:5070"], "NAME=[udp://|tcp://|tls://]HOST:PORT"),
    (["--trunk", "127.0.0.1:5060", "--named-trunk", "b=sctp://127.0.0.1:5070"], "transport 'sctp'"),
    (["--trunk", "127.0.0.1:5060", "--named-trunk", "b=127.0.0.1"], "expected HOST:PORT"),
    (["--trunk", "127.0.0.1:5060", "--named-trunk", "b=127.0.0.1:1", "--named-trunk", "b=127.0.0.1:2"], "given twice"),
])
def test_named_trunks_are_checked_before_anything_starts(tmp_path: Path, args: list[str], message: str) -> None:
    p = dialer("--state-dir", str(tmp_path), "serve", *args, timeout=30)
    assert p.returncode == 2 and message in p.stderr, p.stderr
    assert not (tmp_path / "redis").exists()  # no embedded Redis was started


def test_named_trunk_credentials_come_from_the_environment() -> None:
    from api.cli_serve import named_trunk

    t = named_trunk("carrier-b=tls://sbc.example.net:5061", {"DIALER_TRUNK_CARRIER_B_USERNAME": "u",
                                                              "DIALER_TRUNK_CARRIER_B_PASSWORD": "p"})
    assert (t.name, t.address, t.transport, t.username, t.password) == ("carrier-b", ("sbc.example.net", 5061), "TLS", "u", "p")
    assert named_trunk("b=10.0.0.1:5060", {}).transport == "UDP"
