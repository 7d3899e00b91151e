"""An IVR script and its interpreter, sans-I/O.

A script is a set of nodes. A node plays its prompts, then either collects DTMF digits (up to
`max_digits`, `timeout_s` after the prompts end) and branches on them (`on`, else `otherwise`),
or goes to `next`, or - with neither - hangs up. A node may set results and ask for the SMS.

`IvrSession` turns events (`start`, `played(prompt)`, `digit`, `timer`) into actions (`Play`,
`CollectUntil`, `SetResult`, `SendSms`, `Hangup`); the caller carries them out and reports back.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).parent / "scripts"
DTMF = set("0123456789*#ABCD")


class ScriptError(ValueError):
    """An IVR script is not valid (the message names the node and the field)."""


@dataclass(frozen=True)
class Prompt:
    text: str | None = None
    lang: str = "en"
    file: str | None = None


@dataclass(frozen=True)
class Node:
    name: str
    play: tuple[str, ...] = ()
    max_digits: int = 0
    timeout_s: float = 0.0
    on: dict[str, str] = field(default_factory=dict)
    otherwise: str | None = None
    next: str | None = None
    result: dict[str, str] = field(default_factory=dict)
    sms: bool = False


@dataclass(frozen=True)
class Script:
    name: str
    start: str
    prompts: dict[str, Prompt]
    nodes: dict[str, Node]
    #: Where a prompt's `file` is looked for (the script file's folder).
    base_dir: Path = SCRIPTS

    @classmethod
    def load(cls, path: Path | str) -> Script:
        """A script file, or the name of a shipped one (`"seed_survey"`)."""
        p = Path(path)
        if not p.suffix:
            p = SCRIPTS / f"{p}.toml"
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ScriptError(f"{p}: no such script") from None
        except tomllib.TOMLDecodeError as e:
            raise ScriptError(f"{p}: {e}") from None
        return cls.from_dict(data, str(p), base_dir=p.parent)

    @classmethod
    def shipped(cls, name: str) -> Script:
        """A shipped script by name, parsed once (`preload_shipped` parses them all at start-up:
        then an unknown name is refused without looking at the disk)."""
        script = _SHIPPED.get(name)
        if script is None:
            if _preloaded:
                raise ScriptError(f"{SCRIPTS / (name + '.toml')}: no such script")
            script = _SHIPPED[name] = cls.load(name)
        return script

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "script", base_dir: Path = SCRIPTS) -> Script:
        def need(d: dict[str, Any], key: str, kind: type, ctx: str) -> Any:
            if key not in d:
                raise ScriptError(f"{where}: {ctx} has no {key!r}")
            if not isinstance(d[key], kind):
                raise ScriptError(f"{where}: {ctx}.{key} must be a {kind.__name__}")
            return d[key]

        prompts = {}
        for pid, p in need(data, "prompts", dict, "the script").items():
            if not isinstance(p, dict) or not (p.get("text") or p.get("file")):
                raise ScriptError(f"{where}: prompt {pid!r} needs a text or a file")
            prompts[pid] = Prompt(text=p.get("text"), lang=str(p.get("lang", "en")), file=p.get("file"))
        nodes = {}
        for name, n in need(data, "nodes", dict, "the script").items():
            ctx = f"node {name!r}"
            if not isinstance(n, dict):
                raise ScriptError(f"{where}: {ctx} must be a table")
            unknown = set(n) - {"play", "collect", "on", "otherwise", "next", "result", "sms"}
            if unknown:
                raise ScriptError(f"{where}: {ctx} has unknown field(s) {sorted(unknown)}")
            collect = n.get("collect", {})
            max_digits = int(collect.get("max_digits", 0))
            timeout_s = float(collect.get("timeout_s", 0.0))
            if collect and not (1 <= max_digits <= 32 and 0 < timeout_s <= 120):
                raise ScriptError(f"{where}: {ctx}.collect needs max_digits 1-32 and timeout_s in (0, 120]")
            on = {str(k): str(v) for k, v in n.get("on", {}).items()}
            if on and not collect:
                raise ScriptError(f"{where}: {ctx} branches on digits but collects none")
            for key in on:
                if not key or set(key) - DTMF:
                    raise ScriptError(f"{where}: {ctx}.on: {key!r} is not a DTMF key sequence")
            if n.get("next") and collect:
                raise ScriptError(f"{where}: {ctx} has both collect and next")
            for pid in n.get("play", []):
                if pid not in prompts:
                    raise ScriptError(f"{where}: {ctx} plays unknown prompt {pid!r}")
            nodes[name] = Node(
                name=name, play=tuple(n.get("play", [])), max_digits=max_digits, timeout_s=timeout_s, on=on,
                otherwise=n.get("otherwise"), next=n.get("next"),
                result={str(k): str(v) for k, v in n.get("result", {}).items()}, sms=bool(n.get("sms", False)),
            )
        start = need(data, "start", str, "the script")
        for name, node in nodes.items():
            for target in [*node.on.values(), node.otherwise, node.next]:
                if target is not None and target not in nodes:
                    raise ScriptError(f"{where}: node {name!r} goes to unknown node {target!r}")
        if start not in nodes:
            raise ScriptError(f"{where}: start node {start!r} does not exist")
        return cls(name=str(data.get("name", where)), start=start, prompts=prompts, nodes=nodes, base_dir=base_dir)


@dataclass(frozen=True)
class Play:
    prompt: str


@dataclass(frozen=True)
class CollectUntil:
    """Listen for digits until this time (reset by each digit)."""

    deadline: float


@dataclass(frozen=True)
class SetResult:
    key: str
    value: str


@dataclass(frozen=True)
class SendSms:
    pass


@dataclass(frozen=True)
class Hangup:
    pass


Action = Play | CollectUntil | SetResult | SendSms | Hangup


class IvrSession:
    """One call going through a script."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.node: Node | None = None
        #: Prompts of the current node still to finish, in order.
        self.queue: list[str] = []
        self.digits = ""
        self.deadline: float | None = None
        self.results: dict[str, str] = {}
        self.done = False
        #: Every DTMF digit the subscriber pressed, in order (for the CDR).
        self.pressed = ""

    def start(self, now: float) -> list[Action]:
        return self._enter(self.script.start, now)

    def played(self, prompt: str, now: float) -> list[Action]:
        """The media engine finished (or cut) `prompt`. A prompt of a node already left (the
        subscriber pressed a key during it) changes nothing."""
        if self.done or not self.queue or self.queue[0] != prompt:
            return []
        self.queue.pop(0)
        if self.queue:
            return []
        return self._after_prompts(now)

    def digit(self, d: str, now: float) -> list[Action]:
        """A DTMF digit (RFC 4733 or SIP INFO). Digits pressed during the prompts count too: a
        complete answer branches at once (the next node's prompts replace the current one)."""
        if self.done or self.node is None or d not in DTMF:
            return []
        self.pressed += d
        n = self.node
        if not n.max_digits:
            return []
        self.digits += d
        if len(self.digits) >= n.max_digits or self.digits in n.on:
            return self._branch(now)
        if not self.queue:
            self.deadline = now + n.timeout_s
            return [CollectUntil(self.deadline)]
        return []

    def timer(self, now: float) -> list[Action]:
        if self.done or self.deadline is None or now < self.deadline:
            return []
        return self._branch(now)

    def _enter(self, name: str, now: float) -> list[Action]:
        n = self.script.nodes[name]
        self.node, self.digits, self.deadline = n, "", None
        out: list[Action] = [SetResult(k, v) for k, v in n.result.items()]
        self.results.update(n.result)
        if n.sms:
            out.append(SendSms())
        out += [Play(p) for p in n.play]
        self.queue = list(n.play)
        if not n.play:
            out += self._after_prompts(now)
        return out

    def _after_prompts(self, now: float) -> list[Action]:
        n = self.node
        assert n is not None
        if n.max_digits:
            if self.digits and (len(self.digits) >= n.max_digits or self.digits in n.on):
                return self._branch(now)
            self.deadline = now + n.timeout_s
            return [CollectUntil(self.deadline)]
        if n.next:
            return self._enter(n.next, now)
        self.done = True
        return [Hangup()]

    def _branch(self, now: float) -> list[Action]:
        n = self.node
        assert n is not None
        target = n.on.get(self.digits, n.otherwise)
        if target is None:
            self.done = True
            return [Hangup()]
        return self._enter(target, now)


_SHIPPED: dict[str, Script] = {}
_preloaded = False


def preload_shipped() -> int:
    """Parse every shipped script (`scripts/*.toml`), before the event loop runs; answers how many."""
    global _preloaded
    for p in sorted(SCRIPTS.glob("*.toml")):
        _SHIPPED.setdefault(p.stem, Script.load(p.stem))
    _preloaded = True
    return len(_SHIPPED)
