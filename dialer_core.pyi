"""Rust core of the predictive dialer: contacts import, suppression lists, the Redis call queue,
the pacing engine and a call-centre simulator.

Hand-written stub, checked against the compiled module by `python -m mypy.stubtest dialer_core`
in `make test`.
"""

from collections.abc import Callable, Iterable, Sequence
from os import PathLike
from typing import Any, Literal, TypedDict, final

__version__: str
STATES: list[str]
"""The states a contact can be in: ready, claimed, waiting_retry, callback, do_not_call_back, done."""

class DialerError(Exception):
    """Base class of every error raised by dialer_core."""

class InvalidInput(DialerError, ValueError):
    """An argument, a file's content or a rule is not valid."""

class UnknownCountry(InvalidInput):
    """The default country is not an ISO 3166-1 alpha-2 code the core knows."""

class MissingColumn(InvalidInput):
    """The file has no column for the number, or for a column an exclusion rule names."""

class MalformedFile(InvalidInput):
    """The file is not a CSV nor a list of numbers (binary, empty, broken quoting)."""

class BadRule(InvalidInput):
    """An exclusion rule does not parse."""

class InvalidNumber(InvalidInput):
    """A phone number is not valid for E.164."""

class ListMissing(InvalidInput):
    """A campaign names a suppression list that does not exist: its claims fail closed."""

class PacingEventError(InvalidInput):
    """The pacing engine refused an event: it leaves the engine's state as it was."""

class UnknownCall(PacingEventError):
    """A pacing event names a call that is not in flight (never dialled, or already ended)."""

class OutOfOrderEvent(PacingEventError):
    """A pacing event cannot happen in the call's state, or its time is earlier than the last."""

class ContactsFileError(DialerError, OSError):
    """A contacts or suppression file cannot be read."""

class MediaError(DialerError, OSError):
    """The media engine cannot use a socket: no RTP port can be bound (none free in the range,
    or the address is not this host's), or the engine cannot start."""

class RedisError(DialerError, OSError):
    """Redis answered an error, or something unexpected."""

class RedisUnavailable(RedisError, ConnectionError):
    """Redis cannot be reached or the connection broke."""

class RedisFull(RedisError):
    """Redis refused a write: maxmemory is reached."""

class RedisRewound(RedisError):
    """Redis lost writes it had acknowledged (a restart from an AOF missing its last second):
    a claim refused until the calls in progress are re-asserted (`CallQueue.reassert`)."""

class ImportInterrupted(DialerError):
    """An import stopped part-way; `.report` says what was loaded (running it again completes it)."""

    report: dict[str, Any]

class Rejection(TypedDict):
    line: int
    value: str
    reason: str

class ImportReport(TypedDict):
    read: int
    accepted: int
    rejected: int
    duplicates: int
    suppressed: int
    excluded: int
    rejections: list[Rejection]

class ListReport(TypedDict):
    name: str
    read: int
    added: int
    already: int
    rejected: int
    rejections: list[Rejection]
    total: int

class ListInfo(TypedDict):
    name: str
    count: int
    generation: int

class SampleReport(TypedDict):
    rows: int
    invalid: int
    duplicates: int
    suppressed: int

StrPath = str | PathLike[str]
Format = Literal["auto", "csv", "plain"]
CompleteResult = Literal[
    "final", "retry", "exhausted", "callback", "do_not_call_back", "suppressed", "released", "stale"
]

@final
class Claim:
    """A contact handed to this dialer under a lease. Complete it (or release it) with its token
    before `lease_s` runs out; after that it is delivered again to someone else."""

    @property
    def number(self) -> str:
        """The number in E.164 form, e.g. "+84901234567"."""
    @property
    def partition(self) -> int: ...
    @property
    def token(self) -> int: ...
    @property
    def batch(self) -> int:
        """The lease batch it was claimed in: what `CallQueue.renew` extends."""
    @property
    def attempts(self) -> int:
        """Attempts made before this one."""
    @property
    def source(self) -> Literal["callback", "retry", "fresh", "adopted"]:
        """"callback", "retry", "fresh" or "adopted" (a dead dialer's call kept for its agent)."""
    @property
    def agent(self) -> str | None:
        """The agent a callback is reserved for."""
    @property
    def attrs(self) -> dict[str, str]:
        """Attributes from the imported file (name, segment ...), when claimed with `with_attrs=True`."""

@final
class Completion:
    """The end of one claim: what happened to the call."""

    def __new__(
        cls,
        number: str,
        token: int,
        outcome: str,
        *,
        callback_at: float | None = None,
        agent: str | None = None,
        do_not_call_back_until: float | None = None,
        release: bool = False,
    ) -> Completion: ...
    @property
    def number(self) -> str:
        """The number in E.164 form."""
    @property
    def token(self) -> int: ...
    @property
    def outcome(self) -> str: ...
    @property
    def release(self) -> bool:
        """Given back unused (no attempt counted)."""
    @property
    def agent(self) -> str | None:
        """The agent a callback is reserved for (None: no callback)."""

@final
class CallQueue:
    """A campaign's call queue in Redis. Safe to share between threads; every call releases the GIL
    while it talks to Redis."""

    def __new__(
        cls,
        redis_url: str,
        campaign: str,
        *,
        partitions: int | None = None,
        max_attempts: int = 2,
        retry_delay_s: float = 3600.0,
        retry_on: Sequence[str] | None = None,
    ) -> CallQueue: ...
    @property
    def campaign(self) -> str: ...
    @property
    def partitions(self) -> int: ...
    def configure(
        self, *, max_attempts: int | None = None, retry_delay_s: float | None = None, retry_on: Sequence[str] | None = None
    ) -> None:
        """Change the outcome policy (attempts, retry delay, retried outcomes) for later completions."""
    def mark(self, claims: list[Claim], *, answered: bool = False, details: list[str] | None = None) -> int:
        """Mark claims whose INVITE is leaving (`answered=False`: from now on an attempt, if the
        dialer dies: the expired lease comes back as outcome "interrupted") or whose call was
        answered (`answered=True`: final if the dialer dies: nobody who answered is called again
        because of it). One round trip per partition among the claims; a claim whose lease is no
        longer live is not marked. Returns how many were. `details` (answered marks only, aligned
        with `claims`): what is kept with each mark (see `marks`)."""
    def marks(self, *, partition: int = 0) -> list[tuple[str, int, Literal["dialled", "answered"], str]]:
        """Every dial mark of `partition`'s live leases: (number, token, kind, detail) each, kind
        "dialled" or "answered", detail what the dialler kept with it (the claim's `owner`, an
        answer's `details`), in token order. For a node taking a partition over: a dead
        dialler's calls, to end them."""
    def expire_leases(self, tokens: list[int], *, partition: int = 0) -> int:
        """End now the leases of the claim batches holding these tokens of `partition`: the next
        claim counts their contacts by their marks (`take_interrupted`) instead of waiting for
        the leases to run out. Returns how many batches were ended."""
    def reassert(self, claims: list[Claim], marks: list[str], *, partition: int = 0, lease_s: float = 60.0,
                 now: float | None = None) -> list[Literal["held", "restored", "done", "taken"]]:
        """After Redis lost writes it had acknowledged (a claim raised `RedisRewound`, or the
        server's run id changed): write back the leases and dial marks of `claims`, the calls
        still in progress and those completed in the last seconds, so that none is handed out
        again. `marks` is aligned with `claims`: each one's dial mark after "token|" ("d", "d|owner",
        "a|detail"; "" for none). Answers per claim "held" (Redis had it), "restored" (its claim
        was lost; written back), "done" (it moved on: completed, or counted when its lease
        expired) or "taken" (claimed by someone else meanwhile). Completing a restored claim again
        applies its completion. Claims work again afterwards."""
    def adopt(self, calls: list[tuple[str, int, str]], *, partition: int = 0, lease_s: float = 60.0,
              now: float | None = None) -> list[Claim | None]:
        """A node taking a partition over keeps leased the calls of a dead dialer that its agents
        still have open (connected, or wrapping up), until their dispositions complete them:
        `calls` = (number, token, detail) each, the dead dialer's token and what the new answered
        mark keeps (see `marks`). Each gets a new token in a batch of its own (its `Claim`, source
        "adopted": renew its `batch`; complete it with its `token`, or with the first one, which
        stays valid); the dead dialer's batch then expires without it. None for a call whose
        lease is gone or holds another token."""
    def take_interrupted(self) -> list[tuple[str, int, int, str]]:
        """The dialled contacts whose expired leases this queue's claims found since the last call
        (their dialer died or lost them): (number, partition, attempts, result) each, result one
        of "answered" (final), "retry", "interrupted" (final, not retried) or "exhausted"."""
    def claim(
        self,
        n: int,
        *,
        partition: int = 0,
        lease_s: float = 60.0,
        now: float | None = None,
        with_attrs: bool = False,
        agents: list[str] | None = None,
        dialling: bool = False,
        owner: str | None = None,
    ) -> list[Claim]:
        """Claim up to `n` due contacts of `partition`: due callbacks first, then due retries, then
        fresh contacts. Each is leased for `lease_s` seconds. With `agents`, only callbacks
        reserved for one of them are taken (the others wait for their agent); `[]` takes none.
        `dialling`: the caller places every claimed call now, so each is marked dialled in the
        same script (see `mark`), with `owner` (the dialler's name for itself: up to 64 ASCII
        letters, digits, '-', '.', ':', '_') kept in the mark (see `marks`). Expired leases are
        handed back first: by their marks, as
        attempts (`take_interrupted`), or uncounted when never dialled."""
    def renew(self, batches: list[int], *, partition: int = 0, lease_s: float = 60.0, now: float | None = None) -> int:
        """Extend the leases of claim batches (`Claim.batch`) of `partition` to `lease_s` from now:
        the heartbeat of a dialer whose calls are still in progress. A batch already expired is
        not revived, a later deadline is not shortened. Returns how many batches were extended."""
    def complete(
        self,
        items: Iterable[Completion | tuple[Claim, str] | tuple[str, int, str]],
        *,
        now: float | None = None,
    ) -> list[CompleteResult]:
        """Complete claims; answers one string per item: "final", "retry", "exhausted", "callback",
        "do_not_call_back", "suppressed", "released" or "stale" (wrong or expired token: nothing
        changed)."""
    def stats(self, *, now: float | None = None) -> dict[str, Any]:
        """Queue depth and counters over all partitions; `exists` is False for a campaign nothing
        was ever imported into."""
    def contact(self, number: str) -> dict[str, Any] | None:
        """One contact's state ("ready", "claimed", "waiting_retry", "callback", "do_not_call_back",
        "done"), attempts, last outcome, time and attributes; `None` if not in this campaign."""
    def contacts(self, *, state: str | None = None, cursor: str | None = None, count: int = 100) -> dict[str, Any]:
        """A page of contacts (each as `contact()` gives it), only those in `state` when given, from
        `cursor` (the `next` of the previous page; `None` to start). Answers
        `{"contacts": [...], "next": cursor or None}`."""
    def suppression_lists(self) -> list[str]:
        """Suppression lists checked when contacts are claimed."""
    def set_suppression_lists(self, lists: Sequence[str]) -> None: ...

def import_contacts(
    redis_url: str,
    path: StrPath,
    campaign: str,
    *,
    country: str,
    partitions: int | None = None,
    number_column: str | None = None,
    format: Format = "auto",
    suppression_lists: Sequence[str] = ...,
    exclusions: Sequence[str] = ...,
    batch_size: int = 10000,
    attributes: bool = True,
    progress: Callable[[ImportReport], object] | None = None,
) -> ImportReport:
    """Stream a contacts file (CSV with a header row, or one number per line) into campaign
    `campaign`'s queue: numbers normalised to E.164 with `country` as the default, invalid rows
    rejected with line and reason, duplicates dropped, numbers on `suppression_lists` or matching
    an `exclusions` rule dropped. Returns the report (read, accepted, rejected, duplicates,
    suppressed, excluded, rejections: the first 100). The other columns are kept as attributes
    unless `attributes=False`. `progress(report)` is called about twice a second."""

def parse_contacts(
    path: StrPath,
    *,
    country: str,
    number_column: str | None = None,
    format: Format = "auto",
    exclusions: Sequence[str] = ...,
    progress: Callable[[ImportReport], object] | None = None,
) -> ImportReport:
    """Read, normalise and filter a contacts file without loading it (a dry run): the same report
    as `import_contacts`, with `duplicates` and `suppressed` at 0 (those need Redis)."""

def load_suppression_list(
    redis_url: str,
    name: str,
    path: StrPath,
    *,
    country: str,
    number_column: str | None = None,
    format: Format = "auto",
    mode: Literal["replace", "append"] = "replace",
    progress: Callable[[ListReport], object] | None = None,
) -> ListReport:
    """Load a file of numbers into suppression list `name`. `mode="replace"` makes the file the
    list's whole content (switched atomically at the end); `mode="append"` adds to it."""

def suppression_lists(redis_url: str) -> list[ListInfo]:
    """Every suppression list: name, count, generation."""

def delete_suppression_list(redis_url: str, name: str) -> bool:
    """Delete a suppression list; `False` if there was none of that name."""

def normalize(number: str, country: str) -> str:
    """Normalise one number to E.164 ("+84901234567"), `country` being the default for national
    forms. Raises `InvalidNumber` with the reason."""

COUNTRIES: list[str]
"""ISO 3166-1 alpha-2 codes of the countries `normalize` and the importers know as a default."""

def check_exclusion_rule(rule: str) -> None:
    """Check an exclusion rule's syntax (`segment in {VIP, GOLD}`) without a file: raises `BadRule`
    with the reason. Whether its column exists is known only when a file is read."""

def generate_sample(
    path: StrPath,
    rows: int,
    *,
    seed: int = 1,
    invalid_ratio: float = 0.002,
    duplicate_ratio: float = 0.001,
    suppression_path: StrPath | None = None,
    suppression_ratio: float = 0.0,
) -> SampleReport:
    """Write a sample contacts CSV (`phone,name,segment`, Vietnamese numbers in mixed formats, some
    invalid rows and duplicates). With `suppression_path`, also write about `suppression_ratio`
    of its valid numbers there, one per line. Returns counts of rows, invalid, duplicates,
    suppressed."""

def partition_key(campaign: str, partition: int, *, partitions: int) -> str:
    """The base every queue key of one partition of a campaign of `partitions` starts with, its
    hash tag: `{c:<campaign>:p<partition>}`, or that with a suffix `:<s>` that puts partition n in
    the n-th of `partitions` equal shares of a cluster's slots (spread evenly over its primaries)."""

def campaign_meta_key(campaign: str) -> str:
    """The queue's campaign-wide hash: `{c:<campaign>}:meta`."""

def redis_info(redis_url: str) -> dict[str, str]:
    """`INFO` of the Redis at `redis_url` (all sections) as a dict of strings: for memory figures
    (`used_memory`) and the server version."""

# --- Pacing -----------------------------------------------------------------------------------

PacingMode = Literal["manual", "preview", "progressive", "predictive", "ivr"]
AgentStateName = Literal["ready", "talking", "wrap", "away", "offline"]
UnansweredReason = Literal["no_answer", "busy", "failed", "machine"]

PACING_MODES: list[str]
"""manual, preview, progressive, predictive, ivr."""
SIMULATED_POLICIES: list[str]
"""The policies `simulate` runs: ours (predictive, progressive, preview) and the baselines."""

class PacingConfig(TypedDict):
    mode: str
    target_abandon_rate: float
    abandon_window_s: float
    connect_limit_s: float
    max_dial_ratio: float
    max_channels: int | None
    max_cps: float | None

class LastDecision(TypedDict):
    at: float
    calls: int
    floor: int
    cap: int
    budget: float
    aim: float
    z: float

class PacingStats(TypedDict):
    mode: str
    window_live_answers: int
    window_abandons: int
    window_abandon_rate: float
    abandon_budget: float
    dialed: int
    answered: int
    connected: int
    abandoned: int
    unanswered: dict[str, int]
    agents: dict[str, int]
    calls_ringing: int
    calls_waiting: int
    calls_connected: int
    calls_closing: int
    dial_ratio: float
    live_answer_rate: float
    answer_delay_median_s: float
    answer_delay_p90_s: float
    talk_time_mean_s: float
    wrap_time_mean_s: float
    observations: tuple[int, int, int]
    last_decision: LastDecision

class DecisionInputs(TypedDict):
    mode: str
    ready: int
    waiting: int
    floor: int
    cap: int
    aim: float
    z: float
    p: float
    p_rel_var: float
    answer_by: list[float]
    ringing_ages: list[float]
    talking_elapsed: list[float]
    wrap_elapsed: list[float]
    ring_within: list[tuple[float, list[float]]]
    talk_free: list[tuple[float, list[float]]]
    wrap_free: list[tuple[float, list[float]]]

@final
class PacingEngine:
    """How many calls to place now, for one campaign. Pure: no I/O and no clock; every event
    carries `now`, seconds on one monotonic clock.

    A refused event (unknown call, impossible transition, time going backwards, bad value) raises
    a `ValueError` subclass and leaves the engine as it was.
    """

    def __new__(
        cls,
        mode: PacingMode = "predictive",
        target_abandon_rate: float = 0.03,
        abandon_window_s: float = 86400.0,
        connect_limit_s: float = 2.0,
        max_dial_ratio: float = 3.0,
        max_channels: int | None = None,
        max_cps: float | None = None,
    ) -> PacingEngine: ...
    def agent_state(self, agent_id: str, state: AgentStateName, now: float) -> None:
        """An agent's state changed: "ready", "talking", "wrap", "away" or "offline" (which removes
        the agent). An unknown agent is added."""
    def call_dialed(self, call_id: str, now: float) -> None:
        """A call was placed (each attempt has its own id)."""
    def call_answered(self, call_id: str, now: float) -> None:
        """A person picked up."""
    def call_connected(self, call_id: str, now: float) -> None:
        """The answered call was handed to an agent."""
    def call_abandoned(self, call_id: str, now: float) -> None:
        """The answered call found no agent within the connect limit."""
    def call_unanswered(self, call_id: str, now: float, reason: UnansweredReason) -> None:
        """The call ended without a live answer: "no_answer", "busy", "failed" or "machine". This
        ends the call (no `call_ended` follows)."""
    def call_ended(self, call_id: str, now: float) -> None:
        """An answered call hung up (connected, abandoned, or still waiting for an agent)."""
    def decide(self, now: float) -> int:
        """How many new calls to place now (>= 0)."""
    def stats(self) -> PacingStats:
        """The abandon rate over the window, live answers, estimates, the current dial ratio and the
        last decision."""
    def configure(
        self,
        *,
        mode: PacingMode = ...,
        target_abandon_rate: float = ...,
        abandon_window_s: float = ...,
        connect_limit_s: float = ...,
        max_dial_ratio: float = ...,
        max_channels: int | None = ...,
        max_cps: float | None = ...,
    ) -> None:
        """Change settings while running: all are validated before any applies."""
    def config(self) -> PacingConfig:
        """The current settings."""
    def decision_inputs(self, now: float) -> DecisionInputs:
        """What `decide(now)` reads (for the reference implementation in `bench/`); it refreshes the
        estimates as `decide` would, and counts as an event at `now`."""

class SimSeries(TypedDict):
    t: list[float]
    occupancy: list[float]
    window_abandon_rate: list[float]
    dialed: list[int]
    answers: list[int]
    abandons: list[int]

class SimReport(TypedDict):
    policy: str
    dialed: int
    live_answers: int
    abandons: int
    connects: int
    abandon_rate: float
    worst_window_abandon_rate: float
    occupancy: float
    decisions: int
    series: SimSeries

SimPolicy = Literal[
    "predictive", "progressive", "preview", "fixed_ratio", "vicidial_hard_limit", "vicidial_average", "erlang_b"
]

def simulate(
    policy: SimPolicy = "predictive",
    *,
    agents: int = 100,
    live_rate: float = 0.25,
    drift: float = 1.0,
    machine_rate: float = 0.1,
    busy_rate: float = 0.1,
    fail_rate: float = 0.1,
    answer_delay_median_s: float = 8.0,
    answer_delay_sigma: float = 0.5,
    ring_timeout_s: float = 25.0,
    talk_mean_s: float = 120.0,
    talk_cv: float = 0.8,
    wrap_mean_s: float = 10.0,
    wrap_cv: float = 0.5,
    connect_limit_s: float = 2.0,
    duration_s: float = 28800.0,
    days: int = 1,
    tick_s: float = 0.5,
    series_step_s: float = 60.0,
    seed: int = 1,
    fixed_ratio: float = 2.0,
    target_abandon_rate: float = 0.03,
    abandon_window_s: float = 86400.0,
    max_dial_ratio: float = 3.0,
    max_channels: int | None = None,
    max_cps: float | None = None,
) -> SimReport:
    """Simulate one call-centre day under a pacing policy (seeded: the same arguments give the same
    day). Releases the GIL.

    All agents log in at t=0 (the engine knows nothing yet); `drift` is the live-answer rate at the
    end of the day as a multiple of `live_rate`. With `days` > 1, days start 24 h apart: agents log
    in for `duration_s` of calling hours, stay 60 s for the calls still ringing, then log off, so
    the regulatory window slides across days and nights. The report gives occupancy (talk + wrap over
    logged-in time), the abandon rate over the day and the worst over every `abandon_window_s`
    window ending at an abandon, and per-`series_step_s` series.
    """

# --- media --------------------------------------------------------------------------------

class MediaStats(TypedDict):
    calls: int
    ticks: int
    #: Ticks that began more than one frame late (the engine could not keep up).
    overruns: int
    frames_sent: int
    frames_received: int
    #: Frames relayed from a bridged call to its peer.
    frames_relayed: int
    #: Datagrams on an RTP port that were not RTP (from anyone), and the far end's
    #: telephone-events whose payload does not parse.
    malformed: int
    digits: int
    #: RTP dropped as not from the far end: another IP than the one connected to, another port
    #: than the latched one, or before `connect`.
    rejected_source: int
    #: RTP dropped from the far end's address with another SSRC than its pinned stream.
    rejected_ssrc: int
    #: Times a socket's read budget for a frame was used up (a flood, or a burst left for the
    #: next frame).
    budget_exhausted: int
    #: Datagrams read past a socket's budget, after a slot's frames left (up to half the slot).
    backlog_reads: int
    send_errors: int
    #: How late frames left against their 20 ms schedule (100 µs resolution).
    late_p50_ms: float
    late_p99_ms: float
    late_p999_ms: float
    late_max_ms: float
    frames_late_over_20ms: int

MediaEvent = tuple[Literal["played", "digit", "inactive"], int, str]

@final
class MediaEngine:
    """The RTP media engine: one thread plays prompts to, and hears RFC 4733 DTMF from, every
    call. Each call has its own UDP socket; every `ptime_ms` the thread reads what arrived (at
    most 8 datagrams a socket per 10 ms of frame before the frames, more only in up to half of
    each 2 ms slot after them: a flood waits in, or overflows, its socket's buffer) and sends each connected call one frame (its prompt, a digit being sent, or silence
    unless `send_silence` is off). Methods hand a command to the thread and return at once.

    A call hears only its far end: RTP from the IP it was connected to, from the port of the
    first such packet (symmetric RTP) and with that packet's SSRC (another SSRC is taken once
    the pinned one was silent for 0.5 s). The rest is dropped and counted in `stats()`.

    `inactivity_s`: report a connected call that received no RTP for that long. `ports`: bind
    even ports in this inclusive range (default: any free port).
    """

    def __new__(
        cls,
        bind: str = "127.0.0.1",
        ptime_ms: int = 20,
        inactivity_s: float | None = None,
        send_silence: bool = True,
        ports: tuple[int, int] | None = None,
    ) -> MediaEngine: ...
    @property
    def bind(self) -> str:
        """The address RTP sockets are bound to (the one to put in SDP)."""
    def add_prompt(self, name: str, pcm: bytes) -> float:
        """Register (or replace) a prompt from 8 kHz mono 16-bit little-endian samples; returns
        its length in seconds."""
    def has_prompt(self, name: str) -> bool: ...
    def open(self) -> tuple[int, int]:
        """A new call's media: `(call, local RTP port)`. Raises `MediaError` when no RTP port can
        be bound."""
    def connect(
        self, call: int, host: str, port: int, payload_type: int = 0, dtmf_payload_type: int | None = 101
    ) -> None:
        """Send the call's RTP to `host:port` in `payload_type` (0 PCMU, 8 PCMA);
        `dtmf_payload_type` is the far end's telephone-event type (None: no RFC 4733). From now on
        only RTP from `host` counts, latched anew to the port and SSRC of its first packet."""
    def play(self, call: int, prompts: list[str]) -> None:
        """Play prompts in order, replacing what plays now; a "played" event follows each one
        played to its end (a prompt cut short is not reported)."""
    def bridge(self, a: int, b: int) -> None:
        """Bridge two calls: the audio each receives is sent out of the other (as the other's own
        stream, transcoded when their codecs differ); their own prompts and silence stop. A call
        bridged elsewhere before leaves that bridge."""
    def unbridge(self, call: int) -> None:
        """Take the call (and its peer) out of their bridge: each goes back to its own silence."""
    def stop(self, call: int) -> None:
        """Stop playing (silence follows)."""
    def send_digits(self, call: int, keys: str, duration_ms: int = 100) -> None:
        """Send DTMF keys as RFC 4733 events of `duration_ms` each (40-2000)."""
    def close(self, call: int) -> None:
        """End the call's media and free its port (closing twice does nothing)."""
    def events(self) -> list[MediaEvent]:
        """Events since the last call: `("played", call, prompt)`, `("digit", call, key)`,
        `("inactive", call, "")`."""
    def fileno(self) -> int:
        """A file descriptor that becomes readable when events wait (for `loop.add_reader`)."""
    def stats(self) -> MediaStats: ...
    def reset_stats(self) -> None: ...
    def shutdown(self) -> None:
        """Stop the engine's thread; every call's media ends."""

def wav_to_pcm8k(data: bytes) -> bytes:
    """A WAV file (PCM 8-32 bit, u-law or A-law; any rate and channel count) as 8 kHz mono
    16-bit little-endian samples (windowed-sinc resampling)."""

def pcm8k_to_wav(pcm: bytes) -> bytes:
    """8 kHz mono 16-bit little-endian samples as a WAV file."""
