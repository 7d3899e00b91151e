"""`dialer`: the command line.

Every sub-command that needs Redis uses `--redis-url` / `DIALER_REDIS_URL` when given, and
otherwise starts (or reuses) the embedded redis-server in the state directory and stops it on exit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dialer_core

from api.cli_serve import add_serve_parser
from api.embedded_redis import EmbeddedRedisError, redis_for
from api.progress import GridProgress, ReadProgress
from api.spreadsheet import safe
from api.settings import Settings


def _print_report(report: Mapping[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(report, indent=2))
        return
    print(title)
    for key, value in report.items():
        if key == "rejections":
            continue
        print(f"  {key:<12} {value:>12,}" if isinstance(value, int) else f"  {key:<12} {value}")
    rejections = report.get("rejections") or []
    if rejections:
        print(f"  first rejections ({len(rejections)} kept):")
        for r in rejections[:10]:
            print(f"    line {r['line']}: {r['value']!r}: {r['reason']}")
        if len(rejections) > 10:
            print(f"    ... {len(rejections) - 10} more with --json")


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    progress = ReadProgress("import", not args.quiet)
    common: dict[str, Any] = dict(
        country=args.country,
        number_column=args.number_column,
        format=args.format,
        exclusions=args.exclude,
        progress=progress,
    )
    if args.dry_run:
        report = dialer_core.parse_contacts(args.file, **common)
        progress.done()
        _print_report(report, args.json, f"dry run of {args.file} (nothing loaded):")
        return 0
    with redis_for(settings) as url:
        started = time.perf_counter()
        try:
            report = dialer_core.import_contacts(
                url,
                args.file,
                args.campaign,
                partitions=args.partitions,
                suppression_lists=args.suppression_list,
                batch_size=args.batch_size,
                attributes=not args.no_attributes,
                **common,
            )
        except dialer_core.ImportInterrupted as e:
            progress.done()
            _print_report(e.report, args.json, f"PARTIAL import into campaign {args.campaign}:")
            raise
        progress.done()
        elapsed = time.perf_counter() - started
    _print_report(report, args.json, f"imported {args.file} into campaign {args.campaign} in {elapsed:.1f} s:")
    return 0


def cmd_suppress(args: argparse.Namespace, settings: Settings) -> int:
    with redis_for(settings) as url:
        if args.action == "load":
            progress = ReadProgress(f"list {args.name}", not args.quiet)
            report = dialer_core.load_suppression_list(
                url,
                args.name,
                args.file,
                country=args.country,
                number_column=args.number_column,
                format=args.format,
                mode="append" if args.append else "replace",
                progress=progress,
            )
            progress.done()
            _print_report(report, args.json, f"suppression list {args.name}:")
        elif args.action == "list":
            lists = dialer_core.suppression_lists(url)
            if args.json:
                print(json.dumps(lists, indent=2))
            elif not lists:
                print("no suppression lists")
            else:
                for entry in lists:
                    print(f"  {entry['name']:<24} {entry['count']:>12,} numbers")
        else:
            if not dialer_core.delete_suppression_list(url, args.name):
                print(f"dialer: no suppression list named {args.name!r}", file=sys.stderr)
                return 1
            print(f"deleted suppression list {args.name}")
    return 0


def cmd_queue(args: argparse.Namespace, settings: Settings) -> int:
    with redis_for(settings) as url:
        q = dialer_core.CallQueue(url, args.campaign)
        stats = q.stats()
        if not stats["exists"]:
            print(f"dialer: no campaign {args.campaign!r}: nothing was imported into it", file=sys.stderr)
            return 1
        stats["suppression_lists"] = q.suppression_lists()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"campaign {args.campaign} ({stats['partitions']} partition(s)):")
    for key in ("ready", "retry_due", "retry_waiting", "callbacks_due", "callbacks_waiting", "leased", "lease_batches_overdue"):
        print(f"  {key:<24} {stats[key]:>12,}")
    print(f"  {'suppression lists':<24} {', '.join(stats['suppression_lists']) or '-':>12}")
    for key, value in sorted(stats["counters"].items()):
        print(f"  {key:<24} {value:>12,}")
    return 0


def cmd_contact(args: argparse.Namespace, settings: Settings) -> int:
    number = dialer_core.normalize(args.number, args.country)
    with redis_for(settings) as url:
        q = dialer_core.CallQueue(url, args.campaign)
        if not q.stats()["exists"]:
            print(f"dialer: no campaign {args.campaign!r}: nothing was imported into it", file=sys.stderr)
            return 1
        state = q.contact(number)
    if state is None:
        print(f"dialer: {number} is not in campaign {args.campaign}", file=sys.stderr)
        return 1
    print(json.dumps(state, indent=2, ensure_ascii=False))
    return 0


def cmd_contacts(args: argparse.Namespace, settings: Settings) -> int:
    """Write the campaign's contacts as CSV on stdout, page by page."""
    import csv

    with redis_for(settings) as url:
        q = dialer_core.CallQueue(url, args.campaign)
        if not q.stats()["exists"]:
            print(f"dialer: no campaign {args.campaign!r}: nothing was imported into it", file=sys.stderr)
            return 1
        out = csv.writer(sys.stdout)
        columns = ["number", "state", "attempts", "last_outcome", "time", "agent"]
        attr_columns: list[str] | None = None
        cursor: str | None = None
        written = 0
        while args.limit is None or written < args.limit:
            want = 1000 if args.limit is None else min(1000, args.limit - written)
            page = q.contacts(state=args.state, cursor=cursor, count=want)
            for c in page["contacts"]:
                if attr_columns is None:
                    attr_columns = list(c["attrs"])
                    out.writerow(columns + [safe(a) for a in attr_columns])
                out.writerow([c[k] if c[k] is not None else "" for k in columns]
                             + [safe(c["attrs"].get(a, "")) for a in attr_columns])
                written += 1
            cursor = page["next"]
            if cursor is None:
                break
        if attr_columns is None:
            out.writerow(columns)
    return 0


def cmd_sample(args: argparse.Namespace, settings: Settings) -> int:
    report = dialer_core.generate_sample(
        args.file,
        args.rows,
        seed=args.seed,
        invalid_ratio=args.invalid_ratio,
        duplicate_ratio=args.duplicate_ratio,
        suppression_path=args.suppression_out,
        suppression_ratio=args.suppression_ratio,
    )
    _print_report(report, args.json, f"wrote {args.file}:")
    return 0


def cmd_normalize(args: argparse.Namespace, settings: Settings) -> int:
    status = 0
    for raw in args.numbers:
        try:
            print(dialer_core.normalize(raw, args.country))
        except dialer_core.InvalidNumber as e:
            print(f"dialer: {e}", file=sys.stderr)
            status = 1
    return status


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from api import auth

    with redis_for(settings) as url:
        if args.action == "create":
            try:
                token, record = auth.create_token(url, args.role, args.name or "", args.agent, auth.parse_ttl(args.expires_in))
            except ValueError as e:
                print(f"dialer: {e}", file=sys.stderr)
                return 2
            if args.json:
                print(json.dumps({"token": token, **record}, indent=2))
            else:
                print(token)
                print(f"{record['role']} token {record['id']} created; it is shown only this once", file=sys.stderr)
        elif args.action == "list":
            rows = auth.list_tokens(url)
            if args.json:
                print(json.dumps(rows, indent=2))
            for r in [] if args.json else rows:
                lapses = auth.expires_at(r).isoformat(timespec="seconds")
                print(f"  {r['id']}  {r['role']:<10} {r.get('agent') or '':<16} {r.get('name') or '':<24} {r['created_at']}  expires {lapses}")
        else:
            try:
                gone = auth.revoke_token(url, args.id)
            except ValueError as e:
                print(f"dialer: {e}", file=sys.stderr)
                return 2
            if not gone:
                print(f"dialer: no token with id {args.id}", file=sys.stderr)
                return 1
            print(f"revoked token {args.id}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    if args.agents and args.cluster:
        print("dialer demo: --cluster runs the voice campaign, not --agents", file=sys.stderr)
        return 2
    if args.agents:
        from api import demo_agents

        return demo_agents.run(agents=args.agents, rows=args.rows or 1500, seconds=args.seconds, keep=args.keep,
                               redis_url=settings.redis_url)
    from api.demo import run

    return run(rows=args.rows or 20_000, keep=args.keep, cps=args.cps, channels=args.channels, redis_url=settings.redis_url,
               cluster=args.cluster)


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from pacer import simulation

    scenarios = simulation.grid(quick=args.quick)
    policies = args.policy or list(simulation.POLICIES)
    bar = GridProgress(not args.quiet)
    cells = simulation.run_grid(
        scenarios, policies, hours=args.hours, seed=args.seed, days=args.days, window_s=args.window,
        workers=args.workers, progress=bar,
    )
    bar.done()
    print(simulation.format_table(cells))
    matched = {}
    if "predictive" in policies:
        for p in policies:
            if p.startswith("vicidial"):
                matched[p] = simulation.match_abandon(cells, p, workers=args.workers)
    summary = simulation.summarize(cells, matched)
    print()
    for p in policies:
        print(f"{p}: mean occupancy {summary.mean_occupancy[p]:.1%}, mean day abandon rate "
              f"{summary.mean_abandon_rate[p]:.2%}, over the cap in {summary.over_cap_count[p]} of {len(scenarios)} scenarios")
    if "predictive" in policies:
        for p, gain in summary.gain_points.items():
            less = summary.baseline_abandons_less[p]
            line = f"predictive vs {p}: {gain:+.1f} occupancy points on average; "
            if not less:
                line += "predictive abandoned no more than it in every scenario"
            elif p in summary.matched_gain_points:
                line += (f"{p} abandoned less in {less} scenario(s); with predictive capped at {p}'s rate "
                         f"there: {summary.matched_gain_points[p]:+.1f} points at equal or lower abandon")
            else:
                line += f"{p} abandoned less than predictive in {less} scenario(s)"
            print(line)
        if summary.over_cap:
            print(f"cap exceeded in {len(summary.over_cap)} scenario(s):")
            for label in summary.over_cap:
                print(f"  {label}")
        else:
            span = f"{args.days} days of {args.hours:g} h" if args.days > 1 else f"{args.hours:g} h day"
            print(f"predictive held the cap in every scenario: every {args.window:g} s window of the {span}")
    if args.json:
        args.json.write_text(json.dumps(
            [{"scenario": c.scenario.__dict__, "policy": c.policy,
              **{k: v for k, v in c.report.items() if k != "series"}} for c in cells], indent=1))
        print(f"wrote {args.json}")
    if args.plot:
        try:
            simulation.plot(cells, args.plot)
            print(f"wrote {args.plot}")
        except ImportError:
            print("dialer: no plot: matplotlib is not installed (pip install 'dialer[plot]')", file=sys.stderr)
    return 1 if summary.over_cap else 0


def _add_file_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--country", required=True, help="default country for national numbers (ISO code, e.g. VN)")
    p.add_argument("--number-column", help="CSV column holding the number (default: phone, number, msisdn, ...)")
    p.add_argument("--format", choices=["auto", "csv", "plain"], default="auto", help="file format (default: auto)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dialer", description="Predictive dialer: contacts, suppression lists, the call queue, pacing, the control API.")
    parser.add_argument("--state-dir", help="state directory (default: $DIALER_STATE_DIR or ~/.local/state/dialer)")
    parser.add_argument("--redis-url", help="Redis to use: redis://host:port[/db], unix:///path, or a cluster as redis+cluster://host:port[,host:port...] (default: $DIALER_REDIS_URL, else an embedded redis-server)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("import", help="load a contacts file into a campaign's queue", description=(
        "Stream a CSV (header row; one column holds the number, the others become attributes) or a "
        "plain one-number-per-line file, either possibly gzip-compressed, into a campaign's call queue. Numbers are normalised to "
        "E.164; invalid ones are rejected with line and reason; duplicates, numbers on suppression "
        "lists and rows matching an exclusion rule are dropped. Running an import again loads only "
        "what is not there yet."))
    p.add_argument("file", type=Path)
    p.add_argument("--campaign", required=True, help="campaign id")
    p.add_argument("--partitions", type=int, help="partitions of a new campaign (default 1)")
    p.add_argument("--suppression-list", action="append", default=[], metavar="NAME",
                   help="suppression list the campaign honours (repeatable)")
    p.add_argument("--exclude", action="append", default=[], metavar="RULE",
                   help="exclusion rule, e.g. 'segment in {VIP, GOLD, DIAMOND}' (repeatable)")
    p.add_argument("--batch-size", type=int, default=10_000, help="rows per Redis round trip (default 10000)")
    p.add_argument("--no-attributes", action="store_true", help="load the numbers only, not the other columns")
    p.add_argument("--dry-run", action="store_true", help="parse and report only; load nothing")
    _add_file_options(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("suppress", help="manage suppression lists (do-not-call, VIP, ...)",
                       description="Suppression lists are named lists of numbers shared by campaigns; "
                       "a number on a campaign's list is never dialled, even if added after the import.")
    ssub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = ssub.add_parser("load", help="load a file into a list (replaces it, or --append)")
    s.add_argument("name")
    s.add_argument("file", type=Path)
    s.add_argument("--append", action="store_true", help="add to the list instead of replacing it")
    _add_file_options(s)
    s = ssub.add_parser("list", help="show every list and its size")
    s.add_argument("--json", action="store_true")
    s = ssub.add_parser("delete", help="delete a list")
    s.add_argument("name")
    p.set_defaults(func=cmd_suppress)

    p = sub.add_parser("queue", help="show a campaign's queue: depth per state and counters")
    p.add_argument("campaign")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_queue)

    p = sub.add_parser("contact", help="show one contact's state in a campaign")
    p.add_argument("campaign")
    p.add_argument("number")
    p.add_argument("--country", default="VN", help="default country for a national number (default VN)")
    p.set_defaults(func=cmd_contact)

    p = sub.add_parser("contacts", help="write a campaign's contacts as CSV (state, attempts, last outcome, attributes)")
    p.add_argument("campaign")
    p.add_argument("--state", choices=list(dialer_core.STATES), help="only contacts in this state")
    p.add_argument("--limit", type=int, help="at most this many rows")
    p.set_defaults(func=cmd_contacts)

    p = sub.add_parser("sample", help="write a sample contacts CSV (Vietnamese numbers, mixed formats)")
    p.add_argument("file", type=Path)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--invalid-ratio", type=float, default=0.002)
    p.add_argument("--duplicate-ratio", type=float, default=0.001)
    p.add_argument("--suppression-out", type=Path, help="also write a share of the numbers here, one per line")
    p.add_argument("--suppression-ratio", type=float, default=0.01)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("normalize", help="print numbers in E.164 form")
    p.add_argument("numbers", nargs="+")
    p.add_argument("--country", required=True)
    p.set_defaults(func=cmd_normalize)

    p = sub.add_parser("simulate", help="run the pacing scenario grid: our engine beside the baselines",
                       description=(
        "Simulate call-centre days (seeded, reproducible) for every scenario of the grid - team sizes "
        "5-200, live-answer rates 10-40%%, mean talk 60-300 s, abandon caps 3%% and 1%%, and days whose "
        "answer rate drifts to half - under our predictive engine and the baselines (progressive, "
        "a fixed level of 2 lines per agent, VICIdial ADAPT_HARD_LIMIT and ADAPT_AVERAGE, Erlang-B open loop). Prints occupancy, the day's "
        "abandon rate and the worst rate over any window for each, and plots occupancy and abandon "
        "rate over the day. Exits 1 if the engine broke the cap anywhere."))
    p.add_argument("--quick", action="store_true", help="a 10-scenario corner of the grid")
    p.add_argument("--hours", type=float, default=8.0, help="length of each simulated day (default 8)")
    p.add_argument("--days", type=int, default=1, help="days per scenario, 24 h apart (default 1)")
    p.add_argument("--window", type=float, default=86_400.0, metavar="SECONDS",
                   help="regulatory abandon window (default 86400: UK's 24 h)")
    p.add_argument("--seed", type=int, default=1, help="first seed (scenario i uses seed + i)")
    p.add_argument("--policy", action="append", choices=list(dialer_core.SIMULATED_POLICIES),
                   help="simulate only these policies (repeatable; default: predictive and the baselines)")
    p.add_argument("--workers", type=int, help="threads (default: one per core)")
    p.add_argument("--plot", type=Path, default=Path("simulate.png"), help="PNG to write (default simulate.png)")
    p.add_argument("--no-plot", dest="plot", action="store_const", const=None, help="write no PNG")
    p.add_argument("--json", type=Path, help="also write every cell's figures as JSON here")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_simulate)

    add_serve_parser(sub)

    p = sub.add_parser("token", help="create, list and revoke API tokens", description=(
        "API bearer tokens with roles: admin (everything, approves campaigns), supervisor (runs and tunes "
        "campaigns; approves only campaigns someone else created), agent (its own calls and customers). "
        "Only a token's SHA-256 is stored: the token is printed once, at creation."))
    tsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = tsub.add_parser("create", help="create a token and print it (once)")
    t.add_argument("--role", required=True, choices=["admin", "supervisor", "agent"])
    t.add_argument("--agent", help="the agent an agent token speaks for (required with --role agent)")
    t.add_argument("--name", help="who holds it (required for a supervisor token: \"someone else approves\" compares holders)")
    t.add_argument("--expires-in", default="30d", metavar="DURATION", help="the token stops working after this long: "
                   "e.g. 8h, 30d (default 30d; 1 minute to 365 days)")
    t.add_argument("--json", action="store_true", help="print token and record as JSON")
    t = tsub.add_parser("list", help="list tokens (ids, roles, labels; never the tokens)")
    t.add_argument("--json", action="store_true")
    t = tsub.add_parser("revoke", help="revoke a token by its id (running servers stop accepting it within 1 s)")
    t.add_argument("id", help="the id `token list` shows (at least 8 characters)")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("demo", help="run the seed's voice campaign end to end against a simulated carrier (sipp)", description=(
        "Start an embedded redis-server (unless --redis-url), a simulated carrier (sipp), the SMSC simulator and "
        "`dialer serve`; create, approve and start the seed campaign through the API (exclusions, a do-not-call list, "
        "two calling windows compressed into minutes, two attempts, the greeting / press-1 / thank-you script, SMS "
        "on press 1); show progress; print the results table and the exported CSV's path. Stops everything it started."))
    p.add_argument("--rows", type=int, help="subscribers (default 20000; with --agents, 1500)")
    p.add_argument("--agents", type=int, metavar="N", help="instead: a predictive campaign with N simulated agents (sipp phones, "
                   "a bot setting dispositions); connects, abandons, occupancy")
    p.add_argument("--seconds", type=float, default=120.0, help="with --agents: how long it dials (default 120)")
    p.add_argument("--cps", type=float, default=200.0, help="calls per second at most (default 200)")
    p.add_argument("--channels", type=int, default=2000, help="calls in progress at most (default 2000)")
    p.add_argument("--cluster", action="store_true", help="on a local Redis Cluster (3 primaries + 3 replicas) with two "
                   "`dialer serve` nodes sharing the campaign's 6 partitions, each with half the --cps and --channels")
    p.add_argument("--keep", action="store_true", help="keep the demo's state directory")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings.from_env(args.state_dir, args.redis_url)
    func: Callable[[argparse.Namespace, Settings], int] = args.func
    try:
        return func(args, settings)
    except dialer_core.ImportInterrupted as e:
        if isinstance(e.__cause__, KeyboardInterrupt):
            print(f"dialer: interrupted: {e}", file=sys.stderr)
            return 130
        print(f"dialer: error: {e}", file=sys.stderr)
        return 1
    except (dialer_core.DialerError, EmbeddedRedisError) as e:
        print(f"dialer: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dialer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
