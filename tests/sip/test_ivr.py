"""The IVR interpreter on the seed's script: press 1, press another key, say nothing, barge in;
and scripts that do not hold together are refused with the node and field named."""

from __future__ import annotations

from typing import Any

import pytest

from sip_gateway.ivr.script import CollectUntil, Hangup, IvrSession, Play, Script, ScriptError, SendSms, SetResult


def session() -> tuple[IvrSession, list[Any]]:
    s = IvrSession(Script.load("seed_survey"))
    return s, s.start(0.0)


def test_pressing_1_agrees_thanks_and_sends_the_sms() -> None:
    s, out = session()
    assert out == [Play("greeting")]
    assert s.played("greeting", 6.0) == [CollectUntil(14.0)]
    out = s.digit("1", 7.5)
    assert out == [SetResult("agreed", "yes"), SendSms(), Play("thank_you")]
    assert s.played("thank_you", 10.0) == [Hangup()]
    assert s.results == {"agreed": "yes"} and s.pressed == "1" and s.done


def test_another_key_or_silence_records_the_answer_without_sms() -> None:
    s, _ = session()
    s.played("greeting", 6.0)
    assert s.digit("7", 8.0) == [SetResult("agreed", "no"), Play("recorded")]
    s2, _ = session()
    s2.played("greeting", 6.0)
    assert s2.timer(13.9) == [], "not yet"
    assert s2.timer(14.0) == [SetResult("agreed", "no"), Play("recorded")]
    assert s2.played("recorded", 18.0) == [Hangup()] and s2.pressed == ""


def test_a_key_pressed_during_the_greeting_counts_at_once() -> None:
    s, _ = session()
    assert s.digit("1", 2.0) == [SetResult("agreed", "yes"), SendSms(), Play("thank_you")]
    assert s.played("greeting", 2.5) == [], "the cut greeting's end changes nothing"
    assert s.played("thank_you", 6.0) == [Hangup()]


def test_events_after_the_end_are_ignored() -> None:
    s, _ = session()
    s.played("greeting", 6.0)
    s.digit("2", 7.0)
    s.played("recorded", 9.0)
    assert s.done and s.digit("1", 10.0) == [] and s.timer(100.0) == []


BASE: dict[str, Any] = {
    "start": "a",
    "prompts": {"p": {"text": "hello"}},
    "nodes": {"a": {"play": ["p"], "collect": {"max_digits": 1, "timeout_s": 5}, "on": {"1": "b"}}, "b": {"play": ["p"]}},
}


def variant(**nodes: Any) -> dict[str, Any]:
    d = {**BASE, "nodes": {**BASE["nodes"], **nodes}}
    return d


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (variant(b={"play": ["nope"]}), "unknown prompt 'nope'"),
        (variant(b={"next": "zz"}), "unknown node 'zz'"),
        (variant(b={"on": {"1": "a"}}), "collects none"),
        (variant(a={"collect": {"max_digits": 1, "timeout_s": 5}, "on": {"x": "b"}}), "not a DTMF"),
        (variant(a={"collect": {"max_digits": 0, "timeout_s": 5}}), "max_digits 1-32"),
        (variant(b={"plya": ["p"]}), "unknown field"),
        ({**BASE, "start": "zz"}, "start node 'zz'"),
        ({**BASE, "prompts": {"p": {}}}, "needs a text or a file"),
        ({"nodes": {}, "start": "a"}, "no 'prompts'"),
    ],
)
def test_bad_scripts_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        Script.from_dict(data)


def test_a_missing_script_file() -> None:
    with pytest.raises(ScriptError, match="no such script"):
        Script.load("no_such_script")
