"""``funasr-subs watch DIR...``: the watch-folder daemon (subtitles appear next to media dropped into folders)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funasr_subs.commands import stdout
from funasr_subs.commands.common import add_transcribe_options, settings_from_args, setup_logging
from funasr_subs.commands.parsing import seconds
from funasr_subs.config import Settings, default_state_dir
from funasr_subs.errors import ConfigError
from funasr_subs.progress import DEFAULT_EVERY_S
from funasr_subs.watch.scan import DEFAULT_SUFFIXES, parse_suffixes

if TYPE_CHECKING:  # the daemon (watchdog, sqlite3) is imported when the command runs, not for every command
    from funasr_subs.watch.daemon import WatchOptions

log = logging.getLogger(__name__)

#: This command's options (not Settings keys) and their defaults; the config file's ``[watch]`` table may set them.
DEFAULTS: dict[str, Any] = {
    "settle": 5.0,
    "poll": None,
    "jobs": 2,
    "state_dir": None,
    "suffixes": None,
    "grace": 30.0,
    "progress_every": DEFAULT_EVERY_S,
}
_WATCH_KEYS = frozenset(DEFAULTS) - {"jobs"} | {"once", "http", "dry_run"}

HELP = """\
examples:
  funasr-subs watch ~/Videos                         # runs until stopped (Ctrl-C / SIGTERM)
  funasr-subs watch --poll 30 /mnt/nas/tv            # NFS/SMB/CIFS mounts: inotify never fires there
  funasr-subs watch --once /srv/media                # process the backlog and exit (cron)
  funasr-subs watch --server ws://asr:10095 --format srt,ass -j 1 /srv/tv /srv/films
  funasr-subs watch --http 127.0.0.1:9000 /srv/tv    # plus the HTTP service (Bazarr /asr, webhooks)

A file is processed once its size and mtime stayed unchanged for --settle seconds. Hidden files, .part/.tmp/
.crdownload/.!qB downloads and folders holding a .funasr-subs-ignore file are skipped. A hotwords.txt in a media
file's folder or any parent up to the watched folder is added to the request (nearest wins).
See the queue with 'funasr-subs status'; requeue failures with 'funasr-subs retry'.
Config file: a [watch] table may set settle, poll, jobs, state-dir, suffixes, grace and progress-every.
"""


def _suffixes(value: str) -> frozenset[str]:
    items = parse_suffixes(value)
    if not items:
        raise argparse.ArgumentTypeError("give media suffixes, comma-separated (e.g. mkv,mp4,m4a)")
    return items


def _address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give HOST:PORT, e.g. 127.0.0.1:9000") from None
    return host.strip("[]") or "127.0.0.1", number


def add_state_dir_option(parser: argparse.ArgumentParser | Any) -> None:
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
    w.add_argument("--poll", type=seconds, metavar="SECONDS", help="poll every SECONDS instead of inotify")
    w.add_argument("--settle", type=seconds, metavar="SECONDS", help="quiet time before a file is ready (5)")
    add_state_dir_option(w)
    w.add_argument("--once", action="store_true", help="process the backlog and the queue, then exit")
    w.add_argument(
        "--dry-run",
        action="store_true",
        help="list what --once would process and why each other file would be skipped; change nothing",
    )
    w.add_argument(
        "--suffixes",
        type=_suffixes,
        metavar="LIST",
        help="media suffixes to pick up, comma-separated (default: common video and audio containers)",
    )
    w.add_argument(
        "--grace",
        type=seconds,
        metavar="SECONDS",
        help="at SIGTERM/SIGINT, how long running jobs may finish before they are cancelled and requeued (30)",
    )
    w.add_argument(
        "--progress-every",
        type=seconds,
        metavar="SECONDS",
        help=f"log a progress line on each running file every SECONDS ({DEFAULT_EVERY_S:g}; 0 = none)",
    )
    w.add_argument(
        "--http",
        type=_address,
        metavar="HOST:PORT",
        help="also run the HTTP service (see 'funasr-subs serve'; its [serve] config applies)",
    )
    add_transcribe_options(parser)
    parser.set_defaults(func=run)


def watch_table(config_path: Path | None) -> dict[str, Any]:
    """The config file's ``[watch]`` table, validated and coerced to this command's option names."""
    from funasr_subs.config import read_table

    out: dict[str, Any] = {}
    for raw_key, value in read_table("watch", config_path, os.environ).items():
        key = raw_key.replace("-", "_")
        if key not in DEFAULTS:
            raise ConfigError(f"config file [watch]: unknown setting {raw_key!r} (known: {', '.join(DEFAULTS)})")
        try:
            if key in ("settle", "poll", "grace", "progress_every"):
                out[key] = seconds(str(value))
            elif key == "jobs":
                if isinstance(value, bool) or not 1 <= int(value) <= 256:
                    raise ValueError("use a whole number from 1 to 256")
                out[key] = int(value)
            elif key == "state_dir":
                out[key] = Path(str(value)).expanduser()
            else:
                out[key] = _suffixes(value if isinstance(value, str) else ",".join(map(str, value)))
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise ConfigError(f"config file [watch]: bad value for {raw_key!r}: {value!r} ({exc})") from None
    return out


def _merged(args: argparse.Namespace, table: Mapping[str, Any]) -> dict[str, Any]:
    """Flags, then the ``[watch]`` table, then the defaults."""
    out = dict(DEFAULTS)
    out.update(table)
    out.update({k: getattr(args, k) for k in DEFAULTS if getattr(args, k, None) is not None})
    return out


def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.log_file)
    if not args.paths and not args.once:
        raise ConfigError("give at least one folder to watch (or --once to work through the queue only)")
    if args.http is not None and args.once:
        raise ConfigError("--http needs the daemon to keep running: drop --once (or run 'funasr-subs serve')")
    values = _merged(args, watch_table(args.config))
    if values["poll"] is not None and values["poll"] <= 0:
        raise ConfigError("--poll must be a positive number of seconds")
    transcribe_args = argparse.Namespace(**{k: v for k, v in vars(args).items() if k not in _WATCH_KEYS})
    settings = settings_from_args(transcribe_args, jobs=values["jobs"])
    if args.dry_run:
        return dry_run(
            tuple(p.expanduser() for p in args.paths),
            values["suffixes"] or DEFAULT_SUFFIXES,
            settings,
            (values["state_dir"] or default_state_dir()).expanduser(),
        )
    from funasr_subs.watch.daemon import WatchDaemon, WatchOptions

    options = WatchOptions(
        roots=tuple(p.expanduser() for p in args.paths),
        state_dir=(values["state_dir"] or default_state_dir()).expanduser(),
        settle=values["settle"],
        poll=values["poll"],
        jobs=values["jobs"],
        once=args.once,
        suffixes=values["suffixes"] or DEFAULT_SUFFIXES,
        grace=values["grace"],
        progress_every=values["progress_every"],
    )
    if args.http is None:
        return WatchDaemon(options, settings).run()
    return _run_with_http(options, settings, args)


def _run_with_http(options: WatchOptions, settings: Settings, args: argparse.Namespace) -> int:
    """The daemon plus the HTTP service on the same state database (webhooks queue into it)."""
    from funasr_subs.service import load_service_config, start_service
    from funasr_subs.watch.daemon import WatchDaemon
    from funasr_subs.watch.state import StateDB

    host, port = args.http
    config = load_service_config(
        settings, {"host": host, "port": port, "state_dir": options.state_dir}, config_path=args.config
    )
    if not config.roots:
        config = dataclasses.replace(config, roots=options.roots)
    daemon = WatchDaemon(options, settings)
    with StateDB(options.state_dir) as db, start_service(config, db):
        return daemon.run()


def dry_run(roots: tuple[Path, ...], suffixes: frozenset[str], settings: Settings, state_dir: Path) -> int:
    """``--dry-run``: one line per file on stdout, what ``--once`` would do now; the queue is read, never written."""
    from funasr_subs.watch.plan import plan
    from funasr_subs.watch.state import DB_NAME, StateDB

    missing = [root for root in roots if not root.is_dir()]
    for root in missing:
        log.error("error: %s: not a folder: check the path", root)
    jobs = {}
    if (state_dir / DB_NAME).is_file():
        with StateDB(state_dir) as db:
            jobs = {job.path: job for job in db.jobs()}
    counts = {"process": 0, "skip": 0}
    for step in plan(tuple(r for r in roots if r.is_dir()), suffixes, settings, jobs):
        counts[step.decision] += 1
        stdout.line(f"would {step.decision}: {step.path}: {step.reason}")
    stdout.line(
        f"dry run: {counts['process']} to process, {counts['skip']} to skip; nothing was sent, written or queued"
    )
    return 1 if missing else 0
