"""Rust core of the predictive dialer: contacts import, suppression lists, the Redis call queue.

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

class ContactsFileError(DialerError, OSError):
    """A contacts or suppression file cannot be read."""

class RedisError(DialerError, OSError):
    """Redis answered an error, or something unexpected."""

class RedisUnavailable(RedisError, ConnectionError):
    """Redis cannot be reached or the connection broke."""

class RedisFull(RedisError):
    """Redis refused a write: maxmemory is reached."""

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
    def attempts(self) -> int:
        """Attempts made before this one."""
    @property
    def source(self) -> Literal["callback", "retry", "fresh"]:
        """"callback", "retry" or "fresh"."""
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
    def claim(
        self, n: int, *, partition: int = 0, lease_s: float = 60.0, now: float | None = None, with_attrs: bool = False
    ) -> list[Claim]:
        """Claim up to `n` due contacts of `partition`: due callbacks first, then due retries, then
        fresh contacts. Each is leased for `lease_s` seconds."""
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

def redis_info(redis_url: str) -> dict[str, str]:
    """`INFO` of the Redis at `redis_url` (all sections) as a dict of strings: for memory figures
    (`used_memory`) and the server version."""
