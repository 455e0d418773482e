"""``funasr-subs status``: the watch daemon's queue, failures and recent results."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funasr_subs.commands import stdout
from funasr_subs.commands.watch import add_state_dir_option
from funasr_subs.config import default_state_dir
from funasr_subs.names import json_text, shown

if TYPE_CHECKING:
    from funasr_subs.recognition.pool import ServerStatus
    from funasr_subs.watch.state import StatusSnapshot


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show the watch queue, failures and recent results",
        description="Show the watch daemon's queue: running and queued files, failures with their reason, and the "
        "most recent results.",
        epilog="""\
examples:
  funasr-subs status                               # the default queue (the one 'funasr-subs watch' uses)
  funasr-subs status --state-dir /var/lib/funasr-subs -n 50
  funasr-subs status --json                        # the same as JSON (what GET /status answers)
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_state_dir_option(parser)
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML config file whose [watch] (else [serve]) state_dir is used without --state-dir",
    )
    parser.add_argument("-n", "--limit", type=int, default=20, metavar="N", help="rows per section (20)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else "-"


def render(snap: StatusSnapshot, state_dir: Path, servers: Sequence[ServerStatus] = ()) -> str:
    """The human-readable report."""
    c = snap.counts
    daemon = f"running (pid {snap.daemon_pid})" if snap.daemon_alive else "not running"
    lines = [
        f"daemon: {daemon}; state: {shown(state_dir)}",
        f"queue: {c['queued']} queued, {c['running']} running, {c['done']} done, {c['failed']} failed",
    ]
    if servers:
        from funasr_subs.watch.servers import render_servers

        lines += ["", "servers:", *render_servers(servers, snap.daemon_alive)]
    now = time.time()
    if snap.running:
        lines += ["", "running:"]
        lines += [
            f"  {shown(j.path)}  (attempt {j.attempts}, for {now - (j.started_at or now):.0f} s)" for j in snap.running
        ]
    if snap.queued:
        lines += ["", "queued:"]
        for j in snap.queued:
            waiting = f"  (next try {_when(j.not_before)}; last error: {shown(j.last_error)})" if j.last_error else ""
            lines.append(f"  {shown(j.path)}{waiting}")
        if c["queued"] > len(snap.queued):
            lines.append(f"  ... and {c['queued'] - len(snap.queued)} more")
    if snap.failures:
        lines += ["", "failed (fix the cause, then: funasr-subs retry [PATH...]):"]
        for j in snap.failures:
            gone = "" if os.path.lexists(j.path) else "  (the file is gone: nothing to retry)"
            lines.append(f"  {_when(j.finished_at)}  {shown(j.path)}{gone}")
            lines.append(f"      {shown(j.last_error)}")
    if snap.recent:
        lines += ["", "recent:"]
        for j in snap.recent:
            if j.note and not j.outputs:
                lines.append(f"  {_when(j.finished_at)}  skipped  {shown(j.path)}: {shown(j.note)}")
            else:  # a note beside what was written: speech FunASR lost (recovered, or still lost)
                names = ", ".join(shown(p.name) for p in j.outputs) or "-"
                note = f"  ({shown(j.note)})" if j.note else ""
                lines.append(f"  {_when(j.finished_at)}  done     {shown(j.path)} -> {names}{note}")
    if not snap.daemon_alive and c["queued"]:
        lines += ["", "nothing is processing the queue: start 'funasr-subs watch DIR...' (or 'watch --once')"]
    return "\n".join(lines) + "\n"


def configured_state_dir(config_path: Path | None) -> Path | None:
    """The config file's ``[watch]`` ``state_dir`` (the daemon's), else its ``[serve]`` one (the hook's)."""
    from funasr_subs.config import read_table

    for table in ("watch", "serve"):
        values = read_table(table, config_path, os.environ)
        value = values.get("state_dir") or values.get("state-dir")
        if value:
            return Path(str(value))
    return None


def run(args: argparse.Namespace) -> int:
    state_dir = (args.state_dir or configured_state_dir(args.config) or default_state_dir()).expanduser()
    from funasr_subs.watch.state import DB_NAME, StateDB  # sqlite3 only for this command

    if not (state_dir / DB_NAME).exists():
        stdout.write(f"no watch state in {state_dir}: 'funasr-subs watch' has not run with this --state-dir\n")
        return 0
    from funasr_subs.watch.servers import load_servers

    with StateDB(state_dir) as db:
        snap = db.status(limit=max(0, args.limit))
        servers = load_servers(db)
    if args.json:
        data = {"state_dir": str(state_dir), **snap.to_dict(), "servers": [s.to_dict() for s in servers]}
        stdout.write(json_text(json.dumps(data, ensure_ascii=False, indent=2)) + "\n")
    else:
        stdout.write(render(snap, state_dir, servers))
    return 0
