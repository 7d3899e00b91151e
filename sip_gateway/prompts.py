"""IVR prompts as 8 kHz audio: WAV files, or text rendered once by espeak-ng and cached.

A text prompt is rendered by `espeak-ng` (Debian package `espeak-ng`) in the prompt's language,
resampled to 8 kHz mono by `dialer_core.wav_to_pcm8k` and cached as a WAV file in the cache
folder, named by a hash of espeak-ng's version, the language and the text: the next run reads
the file and renders nothing. The media engine encodes the samples to G.711 (u-law and A-law)
once, when the prompt is registered.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from pathlib import Path

import dialer_core

from sip_gateway.ivr.script import Prompt, Script

ESPEAK = "espeak-ng"


class PromptError(ValueError):
    """A prompt cannot be made (its file is missing or not audio, espeak-ng failed or is absent)."""


_espeak_version: str | None = None


async def espeak_version() -> str:
    global _espeak_version
    if _espeak_version is None:
        if await asyncio.to_thread(shutil.which, ESPEAK) is None:
            raise PromptError(f"{ESPEAK} is not installed (Debian: apt-get install espeak-ng; `make setup` does it)")
        proc = await asyncio.create_subprocess_exec(ESPEAK, "--version", stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        _espeak_version = out.decode(errors="replace").strip()
    return _espeak_version


async def render(prompt: Prompt, base_dir: Path, cache_dir: Path) -> bytes:
    """The prompt as 8 kHz mono 16-bit little-endian samples."""
    if prompt.file:
        path = base_dir / prompt.file
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as e:
            raise PromptError(f"prompt file {path}: {e.strerror}") from None
        try:
            return dialer_core.wav_to_pcm8k(data)
        except ValueError as e:
            raise PromptError(f"prompt file {path}: {e}") from None
    assert prompt.text is not None
    version = await espeak_version()
    key = hashlib.sha256(f"{version}\0{prompt.lang}\0{prompt.text}".encode()).hexdigest()[:32]
    cached = cache_dir / f"{key}.wav"
    try:
        return dialer_core.wav_to_pcm8k(await asyncio.to_thread(cached.read_bytes))
    except FileNotFoundError:
        pass
    # "--": the text is never read as an option, whatever it starts with ("-f/etc/passwd").
    proc = await asyncio.create_subprocess_exec(
        ESPEAK, "-v", prompt.lang, "--stdout", "--", prompt.text,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0 or not out:
        why = err.decode(errors="replace").strip() or f"exit code {proc.returncode}"
        raise PromptError(f"espeak-ng could not render {prompt.text[:40]!r} in {prompt.lang!r}: {why}")
    pcm = dialer_core.wav_to_pcm8k(out)
    await asyncio.to_thread(_store, cached, dialer_core.pcm8k_to_wav(pcm))
    return pcm


def _store(cached: Path, wav: bytes) -> None:
    """Into the cache, whole or not at all (a reader never sees half a file)."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(wav)
    os.replace(tmp, cached)


def prompt_name(script: Script, prompt: str) -> str:
    """The engine's name for a script's prompt (scripts share one engine)."""
    return f"{script.name}/{prompt}"


async def load(script: Script, engine: dialer_core.MediaEngine, cache_dir: Path) -> dict[str, float]:
    """Render (or read from the cache) every prompt of the script and register it with the
    engine; returns each prompt's length in seconds."""
    lengths = {}
    for pid, prompt in script.prompts.items():
        pcm = await render(prompt, script.base_dir, cache_dir)
        lengths[pid] = engine.add_prompt(prompt_name(script, pid), pcm)
    return lengths
