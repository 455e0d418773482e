"""``funasr-subs retry [PATH...]``: queue failed files again (all failures, or given files whatever their state)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from funasr_subs.commands.common import setup_logging
from funasr_subs.commands.watch import add_state_dir_option
from funasr_subs.config import default_state_dir
from funasr_subs.errors import FunasrSubsError

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "retry",
        help="queue failed files again",
        description="Queue the watch daemon's failed files again (after fixing the cause). Given paths are queued "
        "again whatever their state, e.g. to redo a file whose subtitle you deleted.",
        epilog="""\
examples:
  funasr-subs retry                                # every failed file, after fixing the cause
  funasr-subs retry /srv/tv/Show/e01.mkv           # this file again, whatever its state
  funasr-subs retry --state-dir /var/lib/funasr-subs
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="only these media files")
    add_state_dir_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    setup_logging(0, None)
    state_dir = (args.state_dir or default_state_dir()).expanduser()
    errors = 0
    from funasr_subs.watch.state import INTERACTIVE_BUSY_S, StateDB  # sqlite3 only for this command

    with StateDB(state_dir, busy_s=INTERACTIVE_BUSY_S) as db:  # a lock held for seconds is said, not waited out
        if args.paths:
            count = 0
            for path in args.paths:
                try:
                    count += db.enqueue(path, source="retry", force=True)
                except FunasrSubsError as exc:
                    errors += 1
                    log.error("error: %s", exc)
        else:
            for gone in db.forget_gone_failures():
                log.info("forgot %s: the file is gone", gone)
            count = db.retry_failed()
        alive = db.daemon_alive()
    log.info("queued again: %d file(s)", count)
    if count and not alive:
        log.warning("no watch daemon is running on %s: start 'funasr-subs watch DIR...' to process them", state_dir)
    return 1 if errors else 0
