"""``funasr-subs hook``: called by Sonarr/Radarr (Custom Script) or Bazarr (post-processing) to queue a new file."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funasr_subs.commands.common import add_transcribe_options, settings_from_args, setup_logging
from funasr_subs.commands.serve import add_service_options, split_args
from funasr_subs.config import Settings
from funasr_subs.errors import FunasrSubsError

if TYPE_CHECKING:  # the service modules load when the hook runs (Sonarr's Test event needs none of them)
    from funasr_subs.service.config import ServiceConfig

log = logging.getLogger(__name__)

HELP = """\
Sonarr/Radarr: Settings → Connect → + → Custom Script, Path: the funasr-subs-hook executable (no arguments: they
are no longer accepted there; options come from the config file or FUNASR_SUBS_* variables). Triggers: On Import,
On Upgrade. Bazarr (runs after it downloaded a subtitle): Settings → Subtitles → Custom Post-Processing:
  funasr-subs hook --media "{{episode}}"

examples:
  funasr-subs hook --media "/tv/Show/S01E01.mkv"
  funasr-subs hook --path-map /data=/mnt/media /data/tv/Show/S01E01.mkv
  funasr-subs hook --inline film.mkv          # transcribe here when no watch daemon is running

The file is queued for the running `funasr-subs watch` daemon (same --state-dir). With no daemon it stays queued
and a warning says so (exit 0), unless --inline transcribes it right away. Success lines go to stdout, warnings
and errors to stderr.
"""

BAZARR_HINT = (
    "; if the real name has a $ or ` in it, Bazarr's shell expanded it (Bazarr puts {{episode}} in double quotes "
    "and runs the line with a shell): rename the file, or let `funasr-subs watch` find it instead"
)
#: Sonarr/Radarr variables holding the imported file (singular, then the pipe-separated plural of newer versions).
EVENT_VARIABLES = ("sonarr_eventtype", "radarr_eventtype")
FILE_VARIABLES = {
    "sonarr": ("sonarr_episodefile_path", "sonarr_episodefile_paths"),
    "radarr": ("radarr_moviefile_path", "radarr_moviefile_paths"),
}


@dataclass(frozen=True)
class HookCall:
    """What the caller asked: files to queue, or an event to acknowledge and ignore."""

    source: str  # sonarr | radarr | bazarr | hook
    event: str = ""
    paths: tuple[str, ...] = ()
    upgrade: bool = False
    ignore: str = ""  # why nothing is to be done (exit 0)


def read_call(paths: list[str], media: str | None, environ: Mapping[str, str]) -> HookCall:
    """Explicit paths win; otherwise Sonarr/Radarr's environment (names compared in lower case)."""
    if media or paths:
        return HookCall("bazarr" if media else "hook", paths=tuple(([media] if media else []) + paths))
    env = {k.lower(): v for k, v in environ.items()}
    for app, (single, plural) in FILE_VARIABLES.items():
        event = env.get(f"{app}_eventtype")
        if event is None:
            continue
        if event == "Test":
            return HookCall(app, event, ignore="test event: the hook works")
        if event != "Download":
            return HookCall(app, event, ignore=f"{event} events are ignored (only Download/upgrade is queued)")
        found = [env[single]] if env.get(single) else [p for p in env.get(plural, "").split("|") if p]
        upgrade = env.get(f"{app}_isupgrade", "").lower() == "true"
        return HookCall(app, event, tuple(found), upgrade=upgrade)
    return HookCall("hook")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "hook",
        help="queue a file for the watch daemon (Sonarr/Radarr Custom Script, Bazarr post-processing)",
        description="Queue media files for `funasr-subs watch`: from Sonarr/Radarr's environment variables, "
        "--media (Bazarr's {{episode}}) or path arguments.",
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="media files to queue")
    parser.add_argument(
        "--media", dest="hook_media", metavar="PATH", help='a media file (Bazarr: --media "{{episode}}")'
    )
    parser.add_argument(
        "--inline",
        dest="hook_inline",
        action="store_true",
        help="when no watch daemon is running, transcribe here and now",
    )
    add_service_options(parser, listen=False)
    add_transcribe_options(parser)
    parser.set_defaults(func=run)


def called_by_arr(environ: Mapping[str, str]) -> bool:
    """True when Sonarr or Radarr ran us (their event variable is set; names compared in lower case)."""
    return any(key.lower() in EVENT_VARIABLES for key in environ)


def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.log_file, split_streams=True)
    media, inline = args.hook_media, args.hook_inline
    call = read_call(list(args.paths), media, os.environ)
    if call.ignore:
        log.info("%s %s: %s", call.source, call.event, call.ignore)
        return 0
    if not call.paths:
        if call.event:
            log.error("error: %s %s event without a file path variable: nothing to queue", call.source, call.event)
            return 1
        log.error("error: give a media file (PATH or --media), or run from Sonarr/Radarr as a Custom Script")
        return 2
    rest, flags = split_args(argparse.Namespace(**{k: v for k, v in vars(args).items() if not k.startswith("hook_")}))
    settings = settings_from_args(rest)
    from funasr_subs.service.config import load_service_config
    from funasr_subs.service.queueing import admit_all, no_daemon_warning
    from funasr_subs.service.security import resolve_roots

    config = load_service_config(settings, flags, config_path=args.config)
    roots = resolve_roots(config.roots)
    if call.upgrade:
        log.info("%s upgrade: %s", call.source, ", ".join(call.paths))
    from funasr_subs.watch.state import StateDB  # imported here: Sonarr's Test event must not even load it

    with StateDB(config.effective_state_dir) as db:
        if inline and not db.daemon_alive():
            return _inline(call, config, roots, settings, db)
        admissions = admit_all(
            call.paths,
            path_map=config.path_map,
            roots=roots,
            require_roots=False,
            enqueue=lambda path, source: db.enqueue(path, source=source),
            source=call.source,
            base_dir=Path.cwd(),
            known=lambda path: _already(db, path),
        )
        for refused in (a for a in admissions if not a.ok):
            log.error(
                "error: %s%s", refused.error, BAZARR_HINT if call.source == "bazarr" and refused.status == 404 else ""
            )
        # only files still waiting: one already done (and unchanged) waits for nothing
        accepted = [a.path for a in admissions if a.ok and a.path is not None and _waiting(db, a.path)]
        if accepted and not db.daemon_alive():
            log.warning("warning: %s", no_daemon_warning(config.effective_state_dir, accepted, inline_hint=True))
    return 0 if all(a.ok for a in admissions) else 1


def _waiting(db: Any, path: Path) -> bool:
    job = db.get(path)
    return job is None or job.state in ("queued", "running")


def _already(db: Any, path: Path) -> str:
    """What the state database says of a file that was not newly queued."""
    if _waiting(db, path):
        return "already queued"
    job = db.get(path)
    return "already done (unchanged since)" if job.state == "done" else "already failed (unchanged since; see status)"


def _inline(call: HookCall, config: ServiceConfig, roots: tuple[Path, ...], settings: Settings, db: Any) -> int:
    from funasr_subs.service.security import PathRefusedError, admit_path

    """No daemon: transcribe each file now; a retryable failure (server down) leaves it queued instead."""
    from funasr_subs.pipeline import generate_subtitles

    code = 0
    for raw in call.paths:
        try:
            path = admit_path(raw, config.path_map, roots, require_roots=False, base_dir=Path.cwd())
        except PathRefusedError as exc:
            log.error("error: %s", exc.message)
            code = 1
            continue
        try:
            result = generate_subtitles(path, settings)
        except FunasrSubsError as exc:
            if exc.retryable:
                db.enqueue(path, source=call.source)
                log.warning("warning: %s — queued for `funasr-subs watch` to retry", exc)
            else:
                log.error("error: %s", exc)
                code = 1
            continue
        if result.status == "skipped":
            log.info("%s: skipped (%s)", path, result.reason)
        else:
            log.info("%s: wrote %s", path, result.written_names())
    return code
