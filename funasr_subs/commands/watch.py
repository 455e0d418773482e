"""``funasr-subs watch DIR...``: the watch-folder daemon (subtitles appear next to media dropped into folders)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from funasr_subs.commands.common import add_transcribe_options, settings_from_args, setup_logging
from funasr_subs.config import default_state_dir
from funasr_subs.errors import ConfigError
from funasr_subs.watch.daemon import WatchDaemon, WatchOptions
from funasr_subs.watch.scan import DEFAULT_SUFFIXES, parse_suffixes

log = logging.getLogger(__name__)

DEFAULT_JOBS = 2
#: Options of this command that are not Settings keys.
_WATCH_KEYS = frozenset({"poll", "settle", "state_dir", "once", "suffixes", "grace"})

HELP = """\
examples:
  funasr-subs watch ~/Videos                         # runs until stopped (Ctrl-C / SIGTERM)
  funasr-subs watch --poll 30 /mnt/nas/tv            # NFS/SMB/CIFS mounts: inotify never fires there
  funasr-subs watch --once --settle 0 /srv/media     # process the backlog and exit (cron)
  funasr-subs watch --server ws://asr:10095 --format srt,ass -j 1 /srv/tv /srv/films

A file is processed once its size and mtime stayed unchanged for --settle seconds. Hidden files, .part/.tmp/
.crdownload/.!qB downloads and folders holding a .funasr-subs-ignore file are skipped. A hotwords.txt in a media
file's folder or any parent up to the watched folder is added to the request (nearest wins).
See the queue with 'funasr-subs status'; requeue failures with 'funasr-subs retry'.
"""


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if seconds < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return seconds


def _suffixes(value: str) -> frozenset[str]:
    items = parse_suffixes(value)
    if not items:
        raise argparse.ArgumentTypeError("give media suffixes, comma-separated (e.g. mkv,mp4,m4a)")
    return items


def add_state_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help=f"where the queue database lives (default: {default_state_dir()})",
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="watch folders and subtitle every media file that arrives",
        description="Watch folders (recursively) and write subtitles next to every media file that arrives or is "
        "there without up-to-date subtitles. State survives restarts; nothing is processed twice.",
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="DIR", help="folders to watch")
    w = parser.add_argument_group("watching")
    w.add_argument("--poll", type=_seconds, metavar="SECONDS", help="poll every SECONDS instead of inotify")
    w.add_argument(
        "--settle", type=_seconds, default=5.0, metavar="SECONDS", help="quiet time before a file is ready (5)"
    )
    add_state_dir_option(w)
    w.add_argument("--once", action="store_true", help="process the backlog and the queue, then exit")
    w.add_argument(
        "--suffixes",
        type=_suffixes,
        metavar="LIST",
        help="media suffixes to pick up, comma-separated (default: common video and audio containers)",
    )
    w.add_argument(
        "--grace",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="at SIGTERM/SIGINT, how long running jobs may finish before they are cancelled and requeued (30)",
    )
    add_transcribe_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.log_file)
    if not args.paths and not args.once:
        raise ConfigError("give at least one folder to watch (or --once to work through the queue only)")
    if args.poll is not None and args.poll <= 0:
        raise ConfigError("--poll must be a positive number of seconds")
    jobs = args.jobs if args.jobs is not None else DEFAULT_JOBS
    transcribe_args = argparse.Namespace(**{k: v for k, v in vars(args).items() if k not in _WATCH_KEYS})
    settings = settings_from_args(transcribe_args, jobs=jobs)
    options = WatchOptions(
        roots=tuple(p.expanduser() for p in args.paths),
        state_dir=(args.state_dir or default_state_dir()).expanduser(),
        settle=args.settle,
        poll=args.poll,
        jobs=jobs,
        once=args.once,
        suffixes=args.suffixes or DEFAULT_SUFFIXES,
        grace=args.grace,
    )
    return WatchDaemon(options, settings).run()
