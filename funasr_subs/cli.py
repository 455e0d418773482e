"""The ``funasr-subs`` command line: ``build_parser()`` and ``main(argv) -> exit code``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from funasr_subs._version import __version__
from funasr_subs.commands.parsing import Parser
from funasr_subs.errors import FunasrSubsError

log = logging.getLogger(__name__)

#: Sub-command modules under funasr_subs.commands, in the order the help lists them.
COMMANDS: tuple[str, ...] = (
    "transcribe",
    "watch",
    "retime",
    "sync",
    "check",
    "status",
    "retry",
    "hook",
    "serve",
    "config",
)

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


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="funasr-subs",
        description="Subtitles for your media, made by a FunASR speech server.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"funasr_subs.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if argv is None and len(sys.argv) == 1:
        from funasr_subs.commands.hook import called_by_arr

        if called_by_arr(os.environ):  # Sonarr/Radarr run a Custom Script's Path with no arguments at all
            argv = ["hook"]
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = args.func(args)
    except FunasrSubsError as exc:
        print(f"funasr-subs: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("funasr-subs: interrupted", file=sys.stderr)
        return 130
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
