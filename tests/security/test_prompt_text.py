"""Prompt text is spoken, never read as espeak-ng's options: an abandon message of
"-f/etc/passwd" used to make espeak-ng read that file aloud to abandoned customers (6.4 MB of
audio here); now the text itself is spoken (under a second)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sip_gateway import prompts
from sip_gateway.ivr.script import Prompt


def test_a_prompt_that_looks_like_an_option_is_spoken_as_text(tmp_path: Path) -> None:
    pcm = asyncio.run(prompts.render(Prompt(text="-f/etc/passwd", lang="en"), tmp_path, tmp_path / "cache"))
    seconds = len(pcm) / 2 / 8000
    assert 0.2 < seconds < 3.0, seconds
