"""The four-eyes rule after approval: what a change to an approved campaign may do.

An approval covers whom the campaign calls, when, how often, from which number and with what
words. Once a campaign is approved (and while it runs or is paused), a change that only
*tightens* those settings takes effect at once for anyone who may change the campaign: fewer
hours, more suppression lists or exclusions, fewer attempts, a lower abandon target. A change
that loosens any of them (or changes what subscribers hear or see) is an admin's alone; a
supervisor gets 403 naming the settings. `loosened` is the pure comparison; the routes enforce it
inside their compare-and-set, so a campaign approved between the read and the write is checked
again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pacer.windows import CallingWindows

#: Settings whose every change needs an admin after approval: what the subscriber hears or sees,
#: the number shown, the regime the campaign runs under.
CONTENT = ("mode", "caller_id", "country", "ivr_script", "sms", "abandon_message")


def _spans(tz: str, windows: list[str]) -> list[tuple[int, int]]:
    return CallingWindows.parse(tz, windows).spans()


def _within(inner: list[tuple[int, int]], outer: list[tuple[int, int]]) -> bool:
    return all(any(a <= x and y <= b for a, b in outer) for x, y in inner)


def _instant(v: Any) -> datetime | None:
    return None if v is None else v if isinstance(v, datetime) else datetime.fromisoformat(str(v))


def loosened(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The compliance settings `new` loosens against `old` (both whole, validated specs); empty
    when it only tightens them or leaves them alone."""
    out = [k for k in CONTENT if old.get(k) != new.get(k)]
    if old["timezone"] != new["timezone"]:
        out.append("timezone")
    elif not _within(_spans(new["timezone"], new["windows"]), _spans(old["timezone"], old["windows"])):
        out.append("windows")
    start, start2 = _instant(old.get("start_at")), _instant(new.get("start_at"))
    if start is not None and (start2 is None or start2 < start):
        out.append("start_at")
    end, end2 = _instant(old.get("end_at")), _instant(new.get("end_at"))
    if end is not None and (end2 is None or end2 > end):
        out.append("end_at")
    if new["max_attempts"] > old["max_attempts"]:
        out.append("max_attempts")
    if new["retry_delay_s"] < old["retry_delay_s"]:
        out.append("retry_delay_s")
    if not set(new["retry_on"]) <= set(old["retry_on"]):
        out.append("retry_on")
    if not set(new["suppression_lists"]) >= set(old["suppression_lists"]):
        out.append("suppression_lists")
    if not {r.strip() for r in new["exclusions"]} >= {r.strip() for r in old["exclusions"]}:
        out.append("exclusions")
    if new["do_not_call_back_days"] < old["do_not_call_back_days"]:
        out.append("do_not_call_back_days")
    p, p2 = old["pacing"], new["pacing"]
    if p2["target_abandon_rate"] > p["target_abandon_rate"]:
        out.append("pacing.target_abandon_rate")
    if p2["abandon_window_s"] != p["abandon_window_s"]:
        out.append("pacing.abandon_window_s")  # the regulator's window: shorter or longer, not the approver's
    return out
