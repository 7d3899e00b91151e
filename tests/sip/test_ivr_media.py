"""The IVR over real RTP: our media engine plays the seed script's prompts to sipp, which presses
keys by RFC 4733 (its DTMF pcaps) or by SIP INFO; every call gets the script's result."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import dialer_core
import pytest
import uvloop

from sip_gateway import prompts
from sip_gateway.call import TrunkConfig
from sip_gateway.ivr.runner import IvrOutcome, IvrRunner
from sip_gateway.ivr.script import Prompt, Script
from sip_gateway.media import MediaHub
from sip_gateway.outcomes import Outcome
from sip_gateway.uac import Uac
from tests.support.sipp import Sipp

T = TypeVar("T")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prompts")


def run_ivr(sipp: Sipp, cache: Path, script: Script, numbers: list[str], inactivity_s: float | None = None,
            ) -> tuple[list[IvrOutcome], dialer_core.MediaStats]:
    async def main() -> tuple[list[IvrOutcome], dialer_core.MediaStats]:
        engine = dialer_core.MediaEngine(inactivity_s=inactivity_s)
        hub = MediaHub(engine)
        await prompts.load(script, engine, cache)
        uac = await Uac.open(TrunkConfig(trunk=sipp.addr, local=("127.0.0.1", 0)))
        try:
            runner = IvrRunner(uac, hub, script)
            outcomes = list(await asyncio.gather(*(runner.call(n) for n in numbers)))
            return outcomes, engine.stats()
        finally:
            uac.close()
            hub.shutdown()

    return uvloop.run(main())


def test_the_seed_script_over_rtp(tmp_path: Path, cache: Path) -> None:
    # ...8 presses 1 (RFC 4733), ...9 presses 2, ...7 and ...0 stay silent, ...1 is busy.
    numbers = [f"8490{i}{d}" for i in range(2) for d in "08971"]
    sipp = Sipp("uas_carrier.xml", len(numbers), tmp_path).start()
    outcomes, stats = run_ivr(sipp, cache, Script.load("seed_survey"), numbers)
    for n, o in zip(numbers, outcomes):
        got = (o.call.outcome, o.results, o.pressed, o.sms, o.ended_by)
        want = {
            "8": (Outcome.ANSWERED, {"agreed": "yes"}, "1", True, "script"),
            "9": (Outcome.ANSWERED, {"agreed": "no"}, "2", False, "script"),
            "7": (Outcome.ANSWERED, {"agreed": "no"}, "", False, "script"),
            "0": (Outcome.ANSWERED, {"agreed": "no"}, "", False, "script"),
            "1": (Outcome.BUSY, {}, "", False, ""),
        }[n[-1]]
        assert got == want, n
    assert sipp.wait() == 0, sipp.errors()
    assert stats["digits"] == 4 and stats["malformed"] == 0 and stats["send_errors"] == 0
    # The greeting (3.4 s) was cut by the key 0.8 s in: the thank-you followed at once.
    agreed = [o.call for n, o in zip(numbers, outcomes) if n.endswith("8")]
    for c in agreed:
        assert c.answered_at is not None and c.ended_at is not None
        assert c.ended_at - c.answered_at < 0.8 + 3.4 + 1.0


def short_script(silence_s: float = 1.0) -> Script:
    return Script.from_dict({
        "name": "short", "start": "ask",
        "prompts": {"q": {"text": "press one", "lang": "en"}, "ok": {"text": "thanks", "lang": "en"}},
        "nodes": {
            "ask": {"play": ["q"], "collect": {"max_digits": 1, "timeout_s": silence_s}, "on": {"1": "yes"},
                    "otherwise": "no"},
            "yes": {"play": ["ok"], "result": {"agreed": "yes"}, "sms": True},
            "no": {"result": {"agreed": "no"}},
        },
    })


def test_a_key_by_sip_info(tmp_path: Path, cache: Path) -> None:
    sipp = Sipp("uas_info_dtmf.xml", 2, tmp_path).start()
    outcomes, _ = run_ivr(sipp, cache, short_script(silence_s=5.0), ["84901", "84902"])
    for o in outcomes:
        assert (o.results, o.pressed, o.sms, o.ended_by) == ({"agreed": "yes"}, "1", True, "script")
    assert sipp.wait() == 0, sipp.errors()


def test_a_far_end_sending_no_rtp_is_hung_up(tmp_path: Path, cache: Path) -> None:
    sipp = Sipp("uas_carrier.xml", 1, tmp_path).start()
    outcomes, stats = run_ivr(sipp, cache, short_script(silence_s=30.0), ["84907"], inactivity_s=1.0)
    o = outcomes[0]
    assert (o.call.outcome, o.ended_by) == (Outcome.ANSWERED, "inactivity")
    assert o.call.ended_at is not None and o.call.answered_at is not None
    assert 1.0 <= o.call.ended_at - o.call.answered_at < 3.0
    assert sipp.wait() == 0, sipp.errors()


def arun(f: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await f()
    return uvloop.run(main())


def test_prompts_are_rendered_once_and_cached(tmp_path: Path) -> None:
    engine = dialer_core.MediaEngine()
    script = short_script()
    first = arun(lambda: prompts.load(script, engine, tmp_path))
    files = sorted(tmp_path.glob("*.wav"))
    assert len(files) == 2 and 0.3 < first["q"] < 3.0
    with wave.open(str(files[0])) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    stamps = [f.stat().st_mtime_ns for f in files]
    assert arun(lambda: prompts.load(script, engine, tmp_path)) == first
    assert [f.stat().st_mtime_ns for f in files] == stamps
    engine.shutdown()


def test_a_wav_file_prompt_and_bad_prompts(tmp_path: Path) -> None:
    with wave.open(str(tmp_path / "hello.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x01\x00\x01" * 16000)
    pcm = arun(lambda: prompts.render(Prompt(file="hello.wav"), tmp_path, tmp_path))
    assert len(pcm) == 8000 * 2
    with pytest.raises(prompts.PromptError, match="missing.wav"):
        arun(lambda: prompts.render(Prompt(file="missing.wav"), tmp_path, tmp_path))
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(prompts.PromptError, match="not a RIFF/WAVE"):
        arun(lambda: prompts.render(Prompt(file="text.wav"), tmp_path, tmp_path))
    with pytest.raises(prompts.PromptError, match="voice does not exist"):
        arun(lambda: prompts.render(Prompt(text="hi", lang="xx-nope"), tmp_path, tmp_path))


def test_a_runner_refuses_a_script_whose_prompts_are_not_loaded(tmp_path: Path) -> None:
    async def main() -> None:
        engine = dialer_core.MediaEngine()
        hub = MediaHub(engine)
        uac = await Uac.open(TrunkConfig(trunk=("127.0.0.1", 9), local=("127.0.0.1", 0)))
        try:
            with pytest.raises(ValueError, match=r"prompts \['q', 'ok'\] are not loaded"):
                IvrRunner(uac, hub, short_script())
        finally:
            uac.close()
            hub.shutdown()

    uvloop.run(main())
