"""``funasr-subs serve``: the HTTP service for Bazarr (whisper-asr-webservice contract) and media-server webhooks."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from funasr_subs.commands.common import add_transcribe_options, settings_from_args, setup_logging

log = logging.getLogger(__name__)

#: argparse destinations of this command's own options start with this (kept out of the transcription Settings).
PREFIX = "svc_"

HELP = """\
examples:
  funasr-subs serve --root /media                       # 127.0.0.1:9000, no token needed
  FUNASR_SUBS_SERVE_TOKEN=... funasr-subs serve --host 0.0.0.0 --root /media
  funasr-subs serve --root /mnt/tv --path-map /data/tv=/mnt/tv \\
      --jellyfin-url http://jellyfin:8096 --jellyfin-api-key KEY

endpoints:
  POST /asr, /detect-language      Bazarr's Whisper provider (whisper-asr-webservice contract)
  POST /webhook/jellyfin|emby|plex new items are queued for the watch daemon
  GET  /health (no token), /status (the queue)
"""


def add_service_options(parser: argparse.ArgumentParser, *, listen: bool = True) -> None:
    """The ``[serve]`` settings as flags (dest ``svc_<key>``); ``listen`` adds --host/--port/--token."""
    g = parser.add_argument_group("service")
    if listen:
        g.add_argument("--host", dest=PREFIX + "host", metavar="HOST", help="address to bind (127.0.0.1)")
        g.add_argument("--port", dest=PREFIX + "port", type=int, metavar="PORT", help="TCP port (9000)")
        g.add_argument(
            "--token",
            dest=PREFIX + "token",
            metavar="TOKEN",
            help="shared secret clients send (required off 127.0.0.1; prefer FUNASR_SUBS_SERVE_TOKEN)",
        )
    g.add_argument(
        "--root",
        dest=PREFIX + "roots",
        action="append",
        type=Path,
        metavar="DIR",
        help="library root: paths from requests must resolve inside one (repeatable)",
    )
    g.add_argument(
        "--path-map",
        dest=PREFIX + "path_map",
        action="append",
        metavar="FROM=TO",
        help="media server path prefix FROM is TO here (repeatable; longest prefix wins)",
    )
    g.add_argument("--state-dir", dest=PREFIX + "state_dir", type=Path, metavar="DIR", help="the watch queue's folder")
    if not listen:
        return
    g.add_argument("--max-upload-mb", dest=PREFIX + "max_upload_mb", type=int, metavar="MB", help="/asr limit (512)")
    g.add_argument("--asr-jobs", dest=PREFIX + "asr_jobs", type=int, metavar="N", help="/asr calls at once (2)")
    g.add_argument("--upload-dir", dest=PREFIX + "upload_dir", type=Path, metavar="DIR", help="spool uploads here")
    m = parser.add_argument_group("media servers")
    m.add_argument("--jellyfin-url", dest=PREFIX + "jellyfin_url", metavar="URL", help="e.g. http://jellyfin:8096")
    m.add_argument("--jellyfin-api-key", dest=PREFIX + "jellyfin_api_key", metavar="KEY", help="Jellyfin API key")
    m.add_argument("--jellyfin-user-id", dest=PREFIX + "jellyfin_user_id", metavar="ID", help="for older Jellyfin")
    m.add_argument("--emby-url", dest=PREFIX + "emby_url", metavar="URL", help="e.g. http://emby:8096")
    m.add_argument("--emby-api-key", dest=PREFIX + "emby_api_key", metavar="KEY", help="Emby API key")
    m.add_argument("--plex-url", dest=PREFIX + "plex_url", metavar="URL", help="e.g. http://plex:32400")
    m.add_argument("--plex-token", dest=PREFIX + "plex_token", metavar="TOKEN", help="X-Plex-Token")
    for server in ("jellyfin", "emby", "plex"):
        m.add_argument(
            f"--{server}-path-map",
            dest=f"{PREFIX}{server}_path_map",
            action="append",
            metavar="FROM=TO",
            help=f"{server.capitalize()}'s path prefix FROM is TO here, when it mounts the library elsewhere than "
            "--path-map says (repeatable)",
        )
    m.add_argument(
        "--media-server-timeout",
        dest=PREFIX + "media_server_timeout",
        type=float,
        metavar="S",
        help="seconds for each call to Jellyfin, Emby or Plex (10)",
    )


def split_args(args: argparse.Namespace) -> tuple[argparse.Namespace, dict[str, Any]]:
    """(the namespace without this command's options, for settings_from_args; the service flags by key)."""
    rest = {k: v for k, v in vars(args).items() if not k.startswith(PREFIX)}
    flags = {k[len(PREFIX) :]: v for k, v in vars(args).items() if k.startswith(PREFIX)}
    return argparse.Namespace(**rest), flags


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="HTTP service for Bazarr's Whisper provider and Jellyfin/Emby/Plex webhooks",
        description="Serve POST /asr and /detect-language (the whisper-asr-webservice contract Bazarr uses), "
        "media-server webhooks that queue new files for `funasr-subs watch`, GET /health and /status.",
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_service_options(parser)
    add_transcribe_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.log_file)
    # imported here, not at module level: every command's module is imported to build the parser
    from funasr_subs.service import load_service_config, start_service
    from funasr_subs.watch.state import StateDB

    rest, flags = split_args(args)
    settings = settings_from_args(rest)
    config = load_service_config(settings, flags, config_path=args.config)

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    state_db = StateDB(config.effective_state_dir)
    try:
        handle = start_service(config, state_db)
        try:
            if not state_db.daemon_alive():
                log.warning(
                    "no watch daemon is running on %s: webhook items will wait in the queue until "
                    "`funasr-subs watch` runs",
                    config.effective_state_dir,
                )
            # short waits: a signal the kernel hands to another thread is only acted on when this thread runs
            while not stop.wait(0.5):
                pass
        finally:
            handle.shutdown()
    finally:
        state_db.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
