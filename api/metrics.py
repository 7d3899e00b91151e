"""`/metrics` in Prometheus text format, and the middleware that times every request.

Request latency is a histogram per route template (never per raw path: ids would explode the
label set). Campaign figures (calls by outcome, queue depth, campaigns by state, and the pacer's
live figures while one runs) are read from Redis at scrape time; the media engines' totals (RTP
packets refused as not the far end's, malformed, digits) and the SIP UACs' counters (malformed,
refused and stray messages) from the engines and UACs of this process, so only where the API
runs beside the dial role (the default `dialer serve`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric

from sip_gateway.media import MediaHub
from sip_gateway.uac import Uac

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The media engines' totals as counters: name, help, and the `MediaStats` keys by label value.
MEDIA_COUNTERS = (
    ("dialer_media_rtp_rejected", "RTP packets dropped as not the far end's (reason: another source address, another SSRC)",
     "reason", {"source": "rejected_source", "ssrc": "rejected_ssrc"}),
    ("dialer_media_rtp_malformed", "Datagrams on RTP ports that were not RTP", "", {"": "malformed"}),
    ("dialer_media_digits", "RFC 4733 keys heard from the far ends", "", {"": "digits"}),
    ("dialer_media_read_budget_exhausted", "Times a call's socket had more to read than its per-frame budget",
     "", {"": "budget_exhausted"}),
)


class MediaCollector:
    """The totals of the media engines open in this process, read at scrape time."""

    def collect(self) -> list[Metric]:
        stats = [hub.engine.stats() for hub in list(MediaHub.running)]
        if not stats:
            return []
        out: list[Metric] = []
        for name, help_text, label, keys in MEDIA_COUNTERS:
            family = CounterMetricFamily(name, help_text, labels=[label] if label else [])
            for value, key in keys.items():
                family.add_metric([value] if label else [], sum(s[key] for s in stats))  # type: ignore[literal-required]
            out.append(family)
        return out


#: What the SIP UACs counted of the messages they received (`sip_gateway.uac.Counters`).
SIP_KINDS = ("malformed", "failed", "stray", "rejected_source", "rejected_dialog", "rejected_cseq", "retransmissions",
             "forks")


class SipCollector:
    """The SIP UACs' counters of this process (one per trunk; summed), read at scrape time:
    messages received, and those dropped or refused by kind."""

    def collect(self) -> list[Metric]:
        counters = [u.counters for u in list(Uac.running)]
        if not counters:
            return []
        received = CounterMetricFamily("dialer_sip_received", "SIP messages received from the trunks")
        received.add_metric([], sum(c.received for c in counters))
        kinds = CounterMetricFamily(
            "dialer_sip_refused", "SIP messages dropped or refused (malformed: unparsable; failed: its handling raised; "
            "stray: for no call or transaction of ours; rejected_source/dialog/cseq: not the call's trunk, tags or order; "
            "retransmissions answered again; forks: a second 2xx hung up)", labels=["kind"])
        for k in SIP_KINDS:
            kinds.add_metric([k], sum(getattr(c, k) for c in counters))
        return [received, kinds]


BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "dialer_api_request_duration_seconds", "API request latency by route template, method and status",
            ["method", "route", "status"], registry=self.registry, buckets=BUCKETS,
        )

        self.loop_lag = Histogram(
            "dialer_event_loop_lag_seconds", "How late the event loop ran a timer (a busy or blocked loop delays every request)",
            registry=self.registry, buckets=BUCKETS,
        )
        self.registry.register(MediaCollector())
        self.registry.register(SipCollector())

    async def watch_loop(self, stop: asyncio.Event, every_s: float = 0.1) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            due = loop.time() + every_s
            await asyncio.sleep(every_s)
            self.loop_lag.observe(max(0.0, loop.time() - due))

    def text(self) -> str:
        return generate_latest(self.registry).decode()


class TimingMiddleware:
    """Pure ASGI (no per-request task): times each HTTP request to its last response byte."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if not template.endswith("/events"):  # a live stream's length is not a latency
                self.metrics.latency.labels(scope["method"], template, str(status[0])).observe(time.perf_counter() - started)


def _line(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {value}"


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def campaign_lines(campaigns: list[dict[str, Any]], stats: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
                         live: Callable[[str], Awaitable[dict[str, Any] | None]]) -> str:
    """The campaign families, rendered by hand: their values come from Redis at scrape time."""
    out = [
        "# HELP dialer_campaigns Campaigns by state.", "# TYPE dialer_campaigns gauge",
    ]
    by_state: dict[str, int] = {}
    for c in campaigns:
        by_state[c["state"]] = by_state.get(c["state"], 0) + 1
    out += [_line("dialer_campaigns", {"state": s}, n) for s, n in sorted(by_state.items())]
    figures = await asyncio.gather(*(stats(c) for c in campaigns))
    lives = await asyncio.gather(*(live(c["id"]) for c in campaigns))
    out += ["# HELP dialer_calls_total Finished contacts by last outcome.", "# TYPE dialer_calls_total counter"]
    for c, s in zip(campaigns, figures):
        for k, v in sorted(s["counters"].items()):
            if k.startswith("outcome:"):
                out.append(_line("dialer_calls_total", {"campaign": c["id"], "outcome": k[8:]}, v))
    out += ["# HELP dialer_claims_total Queue completions by result (final, retry, exhausted, callback, dnc, released, stale).",
            "# TYPE dialer_claims_total counter"]
    for c, s in zip(campaigns, figures):
        for k, v in sorted(s["counters"].items()):
            if not k.startswith("outcome:"):
                out.append(_line("dialer_claims_total", {"campaign": c["id"], "result": k}, v))
    out += ["# HELP dialer_queue_depth Contacts by queue state.", "# TYPE dialer_queue_depth gauge"]
    for c, s in zip(campaigns, figures):
        for k in ("ready", "retry_due", "retry_waiting", "callbacks_due", "callbacks_waiting", "leased"):
            out.append(_line("dialer_queue_depth", {"campaign": c["id"], "state": k}, s[k]))
    gauges = {
        "abandon_rate": "Abandoned over live answers in the regulatory window (running pacer).",
        "cps": "Calls placed per second (running pacer).",
        "calls_in_progress": "Calls ringing or talking (running pacer).",
        "decisions": "Pacing decisions made (running pacer).",
    }
    for key, help_text in gauges.items():
        rows = [(c["id"], lv[key]) for c, lv in zip(campaigns, lives) if lv and isinstance(lv.get(key), int | float)]
        if rows:
            out += [f"# HELP dialer_pacer_{key} {help_text}", f"# TYPE dialer_pacer_{key} gauge"]
            out += [_line(f"dialer_pacer_{key}", {"campaign": cid}, v) for cid, v in rows]
    return "\n".join(out) + "\n"
