"""The ``funasr-subs`` command line: ``build_parser()`` and ``main(argv) -> exit code``."""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from funasr_subs._version import __version__
from funasr_subs.commands.parsing import Parser
from funasr_subs.errors import FunasrSubsError

log = logging.getLogger(__name__)

#: Sub-command modules under funasr_subs.commands, in the order the help lists them, with their one-line summaries
#: (each module's ``register`` gives the same line; a test checks they agree).
COMMANDS: dict[str, str] = {
    "transcribe": "write subtitles next to media files",
    "watch": "watch folders and subtitle every media file that arrives",
    "retime": "rebuild subtitles from a saved reply with new cue settings",
    "sync": "re-time an existing subtitle to the speech, cue by cue",
    "check": "check subtitles against the rules of a profile",
    "status": "show the watch queue, failures and recent results",
    "retry": "queue failed files again",
    "hook": "queue a file for the watch daemon (Sonarr/Radarr Custom Script, Bazarr post-processing)",
    "serve": "HTTP service for Bazarr's Whisper provider and Jellyfin/Emby/Plex webhooks",
    "config": "print the effective configuration",
}

EPILOG = """\
examples:
  funasr-subs transcribe episode.mkv                 # writes episode.zh.srt next to it
  funasr-subs transcribe --format srt,ass ~/Videos   # every media file below ~/Videos
  funasr-subs transcribe --server wss://asr.lan:10095 --insecure talk.mp4
  funasr-subs watch --format srt,ass /srv/tv /srv/films   # a daemon: subtitles for every new file
  funasr-subs retime episode.mkv --max-cps 12        # rebuild from the saved reply, no server needed
  funasr-subs sync episode.zh.srt episode.mkv        # re-time a downloaded subtitle to the speech
  funasr-subs check episode.zh.srt                   # does it keep the subtitle rules?
  funasr-subs config                                 # print the effective configuration

Run 'funasr-subs COMMAND --help' for a command's options.
"""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, the full options of that one command and a summary line of the others
    (each command's module, and what it imports, is loaded only when that command runs: start-up stays fast)."""
    parser = Parser(
        prog="funasr-subs",
        description="Subtitles for your media, made by a FunASR speech server.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in COMMANDS.items():
        if only is None or only == name:
            importlib.import_module(f"funasr_subs.commands.{name}").register(sub)
        else:
            sub.add_parser(name, help=summary, add_help=False)
    return parser


def _command_in(argv: Sequence[str]) -> str:
    """The sub-command ``argv`` names ("" when none): the first word that is not an option (the top level has only
    --help and --version, which take no value)."""
    first = next((arg for arg in argv if not arg.startswith("-")), "")
    return first if first in COMMANDS else ""


def _suggestion(argv: Sequence[str]) -> str:
    """For a mistyped command (``transcrbe``), the message naming the close one; "" otherwise (argparse's
    ``suggest_on_error`` comes with Python 3.14; we run on 3.11)."""
    word = next((arg for arg in argv if not arg.startswith("-")), "")
    if not word or word in COMMANDS:
        return ""
    close = difflib.get_close_matches(word, COMMANDS, n=1, cutoff=0.6)
    return f"no command {word!r}: did you mean {close[0]!r}? (funasr-subs --help lists them)" if close else ""


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 1:
        from funasr_subs.commands.hook import called_by_arr

        if called_by_arr(os.environ):  # Sonarr/Radarr run a Custom Script's Path with no arguments at all
            argv = ["hook"]
    argv = sys.argv[1:] if argv is None else list(argv)
    mistyped = _suggestion(argv)
    if mistyped:
        print(f"funasr-subs: error: {mistyped}", file=sys.stderr)
        return 2
    parser = build_parser(only=_command_in(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = args.func(args)
    except FunasrSubsError as exc:
        print(f"funasr-subs: error: {exc}", file=sys.stderr)
        _deliver_notifications()
        return 2
    except OSError as exc:
        from funasr_subs.names import too_long, too_long_message

        if not too_long(exc):
            raise
        print(f"funasr-subs: error: {too_long_message(exc.filename or '')}", file=sys.stderr)
        _deliver_notifications()
        return 2  # as any other error that stops a command (FunasrSubsError above)
    except KeyboardInterrupt:
        print("funasr-subs: interrupted", file=sys.stderr)
        _deliver_notifications(interrupted=True)
        return 130
    _deliver_notifications(interrupted=code == 130)
    return code


def _deliver_notifications(*, interrupted: bool = False) -> None:
    """Before the process exits: wait (bounded) for the ``on_done`` notifications still on their way; after an
    interruption (Ctrl-C, SIGTERM) wait for none."""
    webhook = sys.modules.get("funasr_subs.actions.webhook")  # loaded only when a job had one to send
    if webhook is None:
        return
    if interrupted:
        webhook.abandon()
    else:
        webhook.drain()


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


def run_hook() -> None:
    """The ``funasr-subs-hook`` console script: ``funasr-subs hook`` for Sonarr/Radarr, which pass no arguments."""
    sys.exit(main(["hook", *sys.argv[1:]]))
