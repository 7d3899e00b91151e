"""The API's bodies: what ops staff send and what they get back.

Every rule a value must follow lives here, so a bad body is refused whole (422, with the field
and the reason) before anything is stored. A campaign's settings are one `CampaignSpec`; a PATCH
is merged into the stored spec and the result validated again as a whole.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import dialer_core
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from pacer.windows import CallingWindows, WindowError
from sip_gateway.ivr.script import Script, ScriptError

NAME_RE = r"^[A-Za-z0-9_.@-]{1,64}$"
"""Campaign ids, list names and agent ids (they go into Redis key names)."""
OUTCOME_RE = r"^[a-z][a-z0-9_]{0,31}$"

Mode = Literal["manual", "preview", "progressive", "predictive", "ivr"]
State = Literal["pending_approval", "approved", "running", "paused", "stopped", "completed"]
Role = Literal["admin", "supervisor", "agent"]
COMPLETION_RESULTS = ("final", "retry", "exhausted", "callback", "dnc", "suppressed", "released", "stale", "lease_expired")
"""The queue's counters of what became of claims (`dnc`: do not call back)."""
ATTEMPT_RESULTS = ("final", "retry", "exhausted", "callback", "dnc")
"""Those that count as an attempt made."""
Name = Annotated[str, Field(pattern=NAME_RE, examples=["seed-2026-11"])]


def _aware(v: datetime | None) -> datetime | None:
    if v is not None and v.tzinfo is None:
        raise ValueError("give a time zone offset (e.g. 2026-11-23T10:00:00+07:00): the instant must be unambiguous")
    return v


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Constraints shared by a setting and its PATCH, so that both say the same in the OpenAPI schema.
Rate = Annotated[float, Field(gt=0, le=0.2, description="abandoned / live answers over the window (UK Ofcom: 0.03)")]
WindowS = Annotated[float, Field(ge=60, le=30 * 86_400, description="regulatory window the rate is counted over, seconds")]
DialRatio = Annotated[float, Field(ge=1, le=20, description="ringing lines per staffed agent, at most")]
Channels = Annotated[int, Field(ge=1, le=100_000, description="concurrent calls, at most (required in ivr mode)")]
Cps = Annotated[float, Field(gt=0, le=10_000, description="new calls per second, at most")]


class PacingSettings(Strict):
    """How hard the pacer may dial. Changes apply to a running campaign within a second."""

    target_abandon_rate: Rate = 0.03
    abandon_window_s: WindowS = 86_400.0
    max_dial_ratio: DialRatio = 3.0
    max_channels: Channels | None = None
    max_cps: Cps | None = None


class PacingPatch(Strict):
    """Any subset of the pacing settings; `null` clears `max_channels` / `max_cps`."""

    target_abandon_rate: Rate | SkipJsonSchema[None] = None
    abandon_window_s: WindowS | SkipJsonSchema[None] = None
    max_dial_ratio: DialRatio | SkipJsonSchema[None] = None
    max_channels: Channels | None = None
    max_cps: Cps | None = None


class SmsSettings(Strict):
    sender: str = Field(pattern=r"^[A-Za-z0-9 ]{1,11}$", description="alphanumeric sender id, 1-11 characters")
    template: str = Field(min_length=1, max_length=640, description="message text; {name} and other contact attributes are filled in")


class SurveyQuestion(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    text: str = Field(min_length=1, max_length=500)
    choices: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(None, max_length=20)


COUNTRY_RE = "^(" + "|".join(sorted(dialer_core.COUNTRIES)) + ")$"
Title = Annotated[str, Field(min_length=1, max_length=200)]
AbandonMessage = Annotated[str, Field(min_length=1, max_length=300, description=(
    "agent modes: the short identification message played to an answered call no agent took within the "
    "connect limit, in the campaign country's language (default: one naming the caller ID)"))]
CallerId = Annotated[str, Field(pattern=r"^\+?[0-9]{3,20}$", description="number shown to the subscriber (From, P-Asserted-Identity)")]
TimeZone = Annotated[str, Field(min_length=1, max_length=64, description="IANA time zone of the calling windows, e.g. Asia/Ho_Chi_Minh")]
Windows = Annotated[
    list[Annotated[str, Field(pattern=r"^\d{2}:\d{2}(:\d{2})?-\d{2}:\d{2}(:\d{2})?$")]],
    Field(min_length=1, max_length=24, description="daily calling windows, local HH:MM-HH:MM (or to the second, HH:MM:SS), not overlapping"),
]
Country = Annotated[str, Field(pattern=COUNTRY_RE, description="default country for national numbers (ISO 3166-1 alpha-2)")]
Attempts = Annotated[int, Field(ge=1, le=20, description="attempts per contact, the first included")]
RetryDelay = Annotated[float, Field(ge=0, le=30 * 86_400, description="seconds before a retried outcome is due again")]
RetryOn = Annotated[list[Annotated[str, Field(pattern=OUTCOME_RE)]], Field(max_length=32, description="outcomes retried")]
RingTimeout = Annotated[float, Field(ge=15, le=300, description="CANCEL an unanswered INVITE after this long (never under 15 s)")]
ListNames = Annotated[list[Name], Field(max_length=64, description="suppression lists the campaign honours")]
Rules = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=500)]],
    Field(max_length=64, description="rules on contact attributes, e.g. 'segment in {VIP, GOLD}'"),
]
ScriptName = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$", description="shipped IVR script (ivr mode), e.g. seed_survey")]
Survey = Annotated[list[SurveyQuestion], Field(max_length=50, description="the agents' survey form")]
AgentIds = Annotated[list[Name], Field(max_length=10_000, description="agents taking part; empty: any agent may join")]
PreviewTime = Annotated[float, Field(ge=0, le=600, description=(
    "preview mode: seconds the agent reads the customer before the call is placed by itself; "
    "0: only when the agent says (POST /v1/calls/{call_id}/dial)"))]
TrunkName = Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$", description=(
    "a trunk the dialing nodes name (`dialer serve --named-trunk NAME=...`); absent or null: each node's --trunk"))]
DncDays = Annotated[float, Field(ge=0, le=3650, description="a do-not-call-back customer is eligible again after this many days")]


class CampaignFields(Strict):
    """A campaign's settings: everything ops staff choose (their shape; `CampaignSpec` adds the
    rules that need the dialer's knowledge: time zones, windows, rules, scripts, pacing)."""

    name: Title
    mode: Mode = Field(description="manual, preview, progressive, predictive, or ivr (agentless)")
    caller_id: CallerId
    timezone: TimeZone = "UTC"
    windows: Windows = ["00:00-24:00"]
    start_at: AwareDatetime | None = Field(None, description="nothing is dialled before this instant")
    end_at: AwareDatetime | None = Field(None, description="the campaign completes at this instant")
    country: Country = "VN"
    partitions: int = Field(1, ge=1, le=256, description="queue partitions (dialer nodes can share a campaign), each "
                            "dialling its share of pacing.max_cps and max_channels; ivr campaigns only; fixed at creation")
    max_attempts: Attempts = 2
    retry_delay_s: RetryDelay = 3600.0
    retry_on: RetryOn = ["no_answer", "busy", "interrupted"]
    ring_timeout_s: RingTimeout = 25.0
    suppression_lists: ListNames = []
    exclusions: Rules = []
    pacing: PacingSettings = Field(default_factory=PacingSettings)
    ivr_script: ScriptName | None = None
    survey: Survey = []
    sms: SmsSettings | None = None
    agents: AgentIds = []
    do_not_call_back_days: DncDays = 30.0
    preview_s: PreviewTime = 15.0
    trunk: TrunkName | None = None
    abandon_message: AbandonMessage | None = None


class CampaignSpec(CampaignFields):
    """Settings as they are accepted: every rule checked."""

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            CallingWindows.parse(v, ["00:00-24:00"])
        except WindowError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: list[str]) -> list[str]:
        try:
            parsed = CallingWindows.parse("UTC", v)
        except WindowError as e:
            raise ValueError(str(e)) from None
        return [str(w) for w in parsed.windows]

    @field_validator("exclusions")
    @classmethod
    def _rules(cls, v: list[str]) -> list[str]:
        for i, rule in enumerate(v):
            try:
                dialer_core.check_exclusion_rule(rule)
            except dialer_core.BadRule as e:
                raise ValueError(f"rule {i}: {e}") from None
        return v

    @field_validator("ivr_script")
    @classmethod
    def _script(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                Script.shipped(v)
            except ScriptError as e:
                raise ValueError(str(e)) from None
        return v

    @model_validator(mode="after")
    def _whole(self) -> CampaignSpec:
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise ValueError("end_at must be after start_at")
        if self.mode == "ivr":
            if self.pacing.max_channels is None:
                raise ValueError("pacing.max_channels is required in ivr mode (it sets how many lines to keep busy)")
            if self.ivr_script is None:
                raise ValueError("ivr_script is required in ivr mode")
        if self.partitions > 1 and self.mode != "ivr":
            raise ValueError(f"partitions: a {self.mode} campaign is paced for its agents by one engine, so it has one "
                             "partition (another node takes it over if its node dies); several are for ivr campaigns")
        if self.pacing.max_channels is not None and self.pacing.max_channels < self.partitions:
            raise ValueError(f"pacing.max_channels ({self.pacing.max_channels}) must be at least partitions "
                             f"({self.partitions}): each partition dials its share of the channels")
        try:
            dialer_core.PacingEngine(self.mode, **self.pacing.model_dump())
        except ValueError as e:
            raise ValueError(f"pacing: {e}") from None
        return self


class CampaignCreate(CampaignSpec):
    id: Name | None = Field(None, description="campaign id; generated when absent")


class CampaignPatch(Strict):
    """Any subset of the settings; merged into the stored ones, then validated as a whole. `null`
    clears the settings that may be absent (start_at, end_at, ivr_script, sms, trunk)."""

    name: Title | SkipJsonSchema[None] = None
    caller_id: CallerId | SkipJsonSchema[None] = None
    timezone: TimeZone | SkipJsonSchema[None] = None
    windows: Windows | SkipJsonSchema[None] = None
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    country: Country | SkipJsonSchema[None] = None
    max_attempts: Attempts | SkipJsonSchema[None] = None
    retry_delay_s: RetryDelay | SkipJsonSchema[None] = None
    retry_on: RetryOn | SkipJsonSchema[None] = None
    ring_timeout_s: RingTimeout | SkipJsonSchema[None] = None
    suppression_lists: ListNames | SkipJsonSchema[None] = None
    exclusions: Rules | SkipJsonSchema[None] = None
    pacing: PacingPatch | SkipJsonSchema[None] = None
    ivr_script: ScriptName | None = None
    survey: Survey | SkipJsonSchema[None] = None
    sms: SmsSettings | None = None
    agents: AgentIds | SkipJsonSchema[None] = None
    do_not_call_back_days: DncDays | SkipJsonSchema[None] = None
    preview_s: PreviewTime | SkipJsonSchema[None] = None
    trunk: TrunkName | None = None
    abandon_message: AbandonMessage | None = None

    def merged(self, spec: dict[str, Any]) -> dict[str, Any]:
        out = dict(spec)
        for key in self.model_fields_set:
            if key == "pacing" and self.pacing is not None:
                out["pacing"] = {**spec.get("pacing", {}), **self.pacing.model_dump(exclude_unset=True)}
            else:
                value = getattr(self, key)
                out[key] = value.model_dump() if isinstance(value, BaseModel) else (
                    [v.model_dump() if isinstance(v, BaseModel) else v for v in value] if isinstance(value, list) else value
                )
        return out


class Campaign(CampaignFields):
    """A stored campaign (its settings were checked when stored, not again on every read)."""

    id: str
    state: State
    created_at: datetime
    updated_at: datetime
    created_by: str
    approved_by: str | None = None
    revision: int = Field(description="bumped by every change; the pacer reloads its settings when it moves")


class CampaignList(BaseModel):
    campaigns: list[Campaign]


class Rejection(BaseModel):
    line: int
    value: str
    reason: str


class ImportReport(BaseModel):
    read: int
    accepted: int
    rejected: int
    duplicates: int
    suppressed: int
    excluded: int
    rejections: list[Rejection] = Field(description="the first 100 rejected rows, with line number and reason")


class ListReport(BaseModel):
    name: str
    read: int
    added: int
    already: int
    rejected: int
    rejections: list[Rejection]
    total: int


class ListInfo(BaseModel):
    name: str
    count: int
    generation: int


class ContactState(BaseModel):
    number: str
    state: str
    attempts: int
    last_outcome: str | None
    time: float | None = Field(description="when it is due (retry, callback, do-not-call-back end) or was finished, Unix seconds")
    agent: str | None
    attrs: dict[str, str]
    answers: dict[str, str] | None = Field(None, description="the agent's survey answers, when a disposition set them")


class ContactPage(BaseModel):
    contacts: list[ContactState]
    next: str | None = Field(description="cursor of the next page; null at the end")


class CallRecord(BaseModel):
    """One record of the CDR archive: a call attempt, or an SMS sent after one."""

    id: str = Field(description="the record's id (its Redis stream id)")
    kind: Literal["call", "sms"]
    campaign: str
    number: str
    attempt: int
    call_id: str | None
    dialled_at: float | None
    ringing_at: float | None
    answered_at: float | None
    ended_at: float | None
    sip_code: int | None
    outcome: str
    dtmf: str
    agent: str | None
    answers: dict[str, str]
    sms_status: str | None
    detail: str
    recorded_at: float


class PacingView(BaseModel):
    settings: PacingSettings
    mode: Mode
    revision: int
    live: dict[str, Any] | None = Field(description="the running pacer's engine estimates; null while no pacer runs the campaign")


class AgentCreate(Strict):
    id: Name
    name: str = Field(min_length=1, max_length=200)
    sip_uri: str = Field(pattern=r"^sips?:[^\s@]+@[^\s]+$", description="the agent's phone, e.g. sip:alice@10.0.0.5:5060")


class Agent(AgentCreate):
    campaigns: list[str] = Field(description="campaigns the agent has joined")
    call: str | None = Field(None, description="the call the agent is on (until its disposition)")
    away: bool = Field(False, description="on a break: no new calls are put through to the agent")


class AgentList(BaseModel):
    agents: list[Agent]


class NextRequest(Strict):
    campaign: Name | None = Field(None, description="which joined campaign; needed only when the agent joined several")


class Customer(BaseModel):
    call_id: str
    campaign: str
    number: str
    attempts: int = Field(description="attempts before this one")
    source: Literal["callback", "retry", "fresh"]
    attrs: dict[str, str]
    dial_at: AwareDatetime | None = Field(
        None, description="preview: when the call is placed by itself; null: when the agent says (POST /v1/calls/{call_id}/dial)")


class Me(BaseModel):
    role: Literal["admin", "supervisor", "agent"]
    name: str
    agent: str | None = Field(None, description="the agent an agent token speaks for")


class AgentCampaign(BaseModel):
    id: str
    name: str
    mode: Mode
    state: State
    joined: bool
    survey: Survey


class AgentCampaigns(BaseModel):
    campaigns: list[AgentCampaign]


class CallView(BaseModel):
    """An agent's open call: the customer, the campaign's survey, and how the call came."""

    call_id: str
    campaign: str
    mode: Mode
    number: str
    agent: str
    attempts: int = Field(description="attempts before this one")
    attrs: dict[str, str]
    survey: Survey
    connected: bool = Field(description="put through by the dialer (predictive, progressive); false: handed out by `next`")
    dial: Literal["waiting", "dialling", "connected"] | None = Field(
        None, description="manual and preview: waiting (for the agent, or until dial_at), dialling (ringing), "
        "connected (the customer answered and is through to the agent); null for calls the dialer put through")
    dial_at: AwareDatetime | None = Field(None, description="while waiting: when the call is placed by itself (preview)")


class NextResponse(BaseModel):
    customer: Customer | None = Field(description="null when no customer is due now")


class Disposition(Strict):
    outcome: str = Field(pattern=OUTCOME_RE, description="e.g. agreed, declined, no_answer, busy, wrong_number")
    answers: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], Annotated[str, Field(max_length=500)]] = Field(
        {}, max_length=50, description="survey answers by question id")
    callback_at: AwareDatetime | None = Field(None, description="call the customer back then, with the same agent")
    do_not_call_back: bool = Field(False, description="not again for the campaign's do-not-call-back period")

    @model_validator(mode="after")
    def _one(self) -> Disposition:
        if self.callback_at is not None and self.do_not_call_back:
            raise ValueError("callback_at and do_not_call_back exclude each other")
        return self


class DispositionResult(BaseModel):
    call_id: str
    result: str = Field(description="what the queue did: final, retry, exhausted, callback, do_not_call_back")


class Stats(BaseModel):
    campaign: str
    state: State
    queue: dict[str, int] = Field(description="contacts ready, waiting for retry, callbacks, leased")
    attempted: int
    completed: dict[str, int] = Field(description="completions by queue result (final, retry, exhausted, callback, ...)")
    outcomes: dict[str, int] = Field(description="finished contacts by last outcome")
    agents_joined: int
    live: dict[str, Any] | None = Field(description="the running pacer's figures (abandon rate over the window, calls in progress, CPS); null while no pacer runs")


class Problem(BaseModel):
    detail: str
    state: str | None = None


def masked(text: str) -> str:
    """Phone numbers in `text` with their middle digits hidden: +84901234567 -> +8490*****67."""
    return _NUMBER.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


# A run of digits standing alone (or after a URL-encoded "+"), not one inside an identifier
# such as a generated campaign id "c-2273970141", which the logs must keep greppable.
_NUMBER = re.compile(r"(?:(?<=%2B)|(?<![\w+\-]))(\+?\d{4})(\d{3,12})(\d{2})(?!\w)")
