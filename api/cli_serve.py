"""`dialer serve`: its options, checked before anything starts, and the start."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.embedded_redis import redis_for
from api.limits import Limits, parse_size
from api.settings import Settings

if TYPE_CHECKING:
    from pacer.gateway import NamedTrunk


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from api.service import parse_roles, serve
    from pacer.sms import SmscConfig

    smsc = None
    if args.smsc:
        try:
            smsc = SmscConfig.parse(args.smsc, args.smsc_system_id, settings.smsc_password,
                                    retry_delay_s=args.sms_retry_delay, window=args.sms_window)
        except ValueError as e:
            print(f"dialer: {e}", file=sys.stderr)
            return 2
    gateway = None
    if args.named_trunk and not args.trunk:
        print("dialer: --named-trunk needs --trunk (the trunk of campaigns that name none)", file=sys.stderr)
        return 2
    if args.trunk:
        from pacer.gateway import GatewaySettings

        try:
            named = tuple(named_trunk(t, settings.trunk_env) for t in args.named_trunk)
            if len({t.name for t in named}) != len(named):
                raise ValueError("--named-trunk: a name is given twice")
            gateway = GatewaySettings(
                trunk=host_port("--trunk", args.trunk), transport=args.trunk_transport.upper(),
                sip_bind=host_port("--sip-bind", args.sip_bind), rtp_bind=args.rtp_bind,
                rtp_ports=port_range(args.rtp_ports) if args.rtp_ports else None,
                username=settings.trunk_username, password=settings.trunk_password, cps=args.cps,
                channels=args.channels, inactivity_s=args.rtp_timeout, max_call_s=args.max_call,
                prompt_cache=settings.state_dir / "prompts", claim_lease_s=args.claim_lease,
                tls_ca=str(args.trunk_ca) if args.trunk_ca else None, tls_server_name=args.trunk_tls_name,
                named=named, partition_lease_s=args.partition_lease, dial_marks=not args.no_dial_marks,
            )
        except ValueError as e:
            print(f"dialer: {e}", file=sys.stderr)
            return 2
    try:
        roles = parse_roles(args.roles, trunk=gateway is not None, smsc=smsc is not None, recorder=not args.no_recorder)
    except ValueError as e:
        print(f"dialer: {e}", file=sys.stderr)
        return 2
    try:
        limits = Limits(max_body=parse_size(args.max_body), max_upload=parse_size(args.max_upload),
                        disk_reserve=parse_size(args.disk_reserve), streams_per_token=args.streams_per_token)
    except ValueError as e:
        print(f"dialer: {e}", file=sys.stderr)
        return 2
    with redis_for(settings) as url:
        return serve(settings, url, args.host, args.port, roles=roles, log_level=args.log_level,
                     access_log=args.access_log, cdr_path=args.cdr_db, smsc=smsc, gateway=gateway, limits=limits)


def host_port(option: str, text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{option} {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def named_trunk(text: str, env: Mapping[str, str]) -> NamedTrunk:
    """NAME=[udp://|tcp://|tls://]HOST:PORT; Digest credentials from $DIALER_TRUNK_<NAME>_USERNAME
    and _PASSWORD (NAME upper-cased, '-' as '_')."""
    from pacer.gateway import NamedTrunk

    name, sep, target = text.partition("=")
    if not sep or not re.fullmatch(r"[a-z0-9_-]{1,32}", name):
        raise ValueError(f"--named-trunk {text!r}: expected NAME=[udp://|tcp://|tls://]HOST:PORT, NAME of a-z 0-9 _ - (at most 32)")
    scheme, sep, rest = target.partition("://")
    if not sep:
        scheme, rest = "udp", target
    if scheme not in ("udp", "tcp", "tls"):
        raise ValueError(f"--named-trunk {text!r}: transport {scheme!r}: expected udp, tcp or tls")
    var = "DIALER_TRUNK_" + name.upper().replace("-", "_")
    return NamedTrunk(name=name, address=host_port("--named-trunk", rest), transport=scheme.upper(),
                      username=env.get(var + "_USERNAME") or None, password=env.get(var + "_PASSWORD") or None)


def partition_lease(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds, e.g. 6") from None
    if not 2.0 <= v <= 120.0:
        raise argparse.ArgumentTypeError(f"{text}: between 2 and 120 seconds")
    return v


def port_range(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    if not sep or not lo.isdigit() or not hi.isdigit() or not 0 < int(lo) < int(hi) <= 65535:
        raise ValueError(f"--rtp-ports {text!r}: expected LOW-HIGH, such as 20000-29999")
    return int(lo), int(hi)


def add_serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the dialer: control API, dialling, CDR recorder, SMS (--roles)", description=(
        "Run the dialer's roles in one process (--roles picks some). api: the HTTP control API (campaigns and "
        "their lifecycle, contacts, suppression lists, agents, live pacing, stats, Server-Sent Events, "
        "results.csv, /metrics and /healthz; OpenAPI at /docs). record: every call's CDR into the SQLite "
        "archive (--cdr-db). sms (with --smsc): the campaigns' SMS over SMPP 3.4. dial (with --trunk): the "
        "running campaigns (every mode) through that SIP trunk (or the --named-trunk a campaign names), sharing "
        "their partitions with the other dialing processes on the same Redis. Stops cleanly on SIGTERM or "
        "SIGINT, letting the calls in progress end (a second signal hangs them up, their outcomes recorded). "
        "Every route but /healthz needs a bearer token (`dialer token create`), checked before a body is read."))
    p.add_argument("--roles", metavar="ROLE,...", help="run only these of api, dial, record, sms (default: all this "
                   "node is configured for: dial with --trunk, sms with --smsc, record unless --no-recorder); e.g. "
                   "--roles api on one host and --roles dial,record,sms on others")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--access-log", action="store_true", help="log every request (numbers masked)")
    p.add_argument("--max-body", default="1M", metavar="SIZE", help="API: largest JSON body (default 1M); larger is 413")
    p.add_argument("--max-upload", default="4G", metavar="SIZE",
                   help="API: largest uploaded contacts or suppression file, as sent (default 4G); larger is 413")
    p.add_argument("--disk-reserve", default="1G", metavar="SIZE", help="API: refuse an upload (507) that would leave less "
                   "than this free on the state directory's disk, kept for Redis and the CDR archive (default 1G)")
    p.add_argument("--streams-per-token", type=int, default=8, metavar="N",
                   help="API: event streams one token may hold open at once (default 8); more is 429")
    p.add_argument("--cdr-db", type=Path, help="the CDR archive, SQLite (default: STATE_DIR/cdr.sqlite3)")
    p.add_argument("--no-recorder", action="store_true",
                   help="do not record CDRs in this process (one recorder per archive file records at a time; others stand by)")
    p.add_argument("--smsc", metavar="HOST:PORT", help="send the campaigns' SMS through this SMPP 3.4 SMSC (password: $DIALER_SMSC_PASSWORD)")
    p.add_argument("--smsc-system-id", default="dialer", help="SMPP system_id to bind with (default dialer)")
    p.add_argument("--sms-retry-delay", type=float, default=30.0, metavar="SECONDS",
                   help="send a message the SMSC refused again after this long (default 30)")
    p.add_argument("--sms-window", type=int, default=10, help="SMS in flight at most (default 10)")
    p.add_argument("--trunk", metavar="HOST:PORT", help="dial running campaigns through this SIP trunk "
                   "(Digest credentials: $DIALER_TRUNK_USERNAME, $DIALER_TRUNK_PASSWORD); without it, nothing is dialled")
    p.add_argument("--named-trunk", action="append", default=[], metavar="NAME=[udp|tcp|tls://]HOST:PORT",
                   help="one more trunk, for the campaigns whose `trunk` setting names it (repeatable; each with its own "
                   "--cps and --channels caps; Digest credentials: $DIALER_TRUNK_<NAME>_USERNAME and _PASSWORD). "
                   "A campaign naming a trunk this node lacks is left to nodes that have it")
    p.add_argument("--trunk-transport", default="udp", choices=["udp", "tcp", "tls"], help="SIP transport to the trunk (default udp)")
    p.add_argument("--trunk-ca", type=Path, metavar="PEM", help="TLS: verify the trunk's certificate with this CA file (default: the system's CAs)")
    p.add_argument("--trunk-tls-name", metavar="NAME", help="TLS: the name the trunk's certificate must carry (default: the trunk's host)")
    p.add_argument("--sip-bind", default="127.0.0.1:0", metavar="HOST:PORT", help="local SIP address (default 127.0.0.1:0: any port)")
    p.add_argument("--rtp-bind", default="127.0.0.1", metavar="HOST", help="local RTP address, put in SDP (default 127.0.0.1)")
    p.add_argument("--rtp-ports", metavar="LOW-HIGH", help="RTP ports to use (even ones; default: any free port)")
    p.add_argument("--cps", type=float, default=100.0, help="this node's calls per second at most, over all campaigns (default 100)")
    p.add_argument("--channels", type=int, default=2000, help="this node's calls in progress at most (default 2000)")
    p.add_argument("--rtp-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="hang up an answered call that sent no RTP for this long (default 30)")
    p.add_argument("--max-call", type=float, default=300.0, metavar="SECONDS", help="hang up an IVR call after this long (default 300)")
    p.add_argument("--claim-lease", type=float, default=45.0, metavar="SECONDS",
                   help="lease on claimed contacts past the ring timeout, renewed while their calls go on: a dead node's "
                   "contacts are dialled again after it (default 45)")
    p.add_argument("--partition-lease", type=partition_lease, default=6.0, metavar="SECONDS",
                   help="a campaign partition's lease, renewed every second while this node dials it: a dead node's "
                   "partitions are taken over this long after its last renewal (default 6; 2 to 120). Shorter takes "
                   "over sooner, but a node stalled longer than this (a slow Redis, a paused VM) loses its partitions "
                   "to another node; the contacts its calls hold stay leased to it, so nobody is called twice")
    p.add_argument("--no-dial-marks", action="store_true",
                   help="for measuring what crash consistency costs (bench/bench_node_marks.py), never in production: "
                   "claims are not marked dialled nor calls answered, so if this node dies the calls it had in "
                   "progress are left up and their subscribers are called again")
    p.set_defaults(func=cmd_serve)

