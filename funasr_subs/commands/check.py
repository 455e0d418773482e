"""``funasr-subs check FILE...``: report the cues of any SRT/ASS/VTT that break the subtitle rules."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import pysubs2

from funasr_subs import subfile
from funasr_subs.check import check_cues, cues_from_events, format_report
from funasr_subs.commands.common import add_common_options, add_cue_options, settings_from_args, setup_logging
from funasr_subs.cues import validate
from funasr_subs.cues.settings import CueSettings
from funasr_subs.errors import BadInputError, FunasrSubsError
from funasr_subs.model import Cue
from funasr_subs.names import shown, too_long, too_long_message
from funasr_subs.safeio import read_regular_bytes
from funasr_subs.subfile import SubtitleFile

log = logging.getLogger(__name__)

HELP = """\
examples:
  funasr-subs check film.zh.srt                 # Chinese rules: 16 wide, 2 lines, 9 chars/s
  funasr-subs check --profile en talk.en.vtt    # English rules: 42 wide, 20 chars/s
  funasr-subs check --max-cps 12 -q *.srt       # a custom reading speed, summaries only

exit status: 0 every cue keeps the rules, 1 some cue breaks them, 2 a file cannot be read.
"""

#: The cue options that change what is checked (the others only change how cues are made).
CHECKED = frozenset({"profile", "max_width", "max_lines", "min_duration", "max_duration", "min_gap", "max_cps"})
#: ASS/SSA store centiseconds, so times may be off by up to 10 ms from what was meant.
_COARSE = {"ass", "ssa"}
#: Text any SRT/VTT cue or ASS file holds; a non-empty file without cues or these is not a subtitle file at all.
_SUBTITLE_MARKS = ("-->", "WEBVTT", "[Script Info]", "[Events]")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check subtitles against the rules of a profile",
        description="Check SRT/ASS/VTT files (ours or anyone's) against the subtitle rules of a profile: line width, "
        "lines per cue, duration, reading speed, gaps and overlaps.",
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="FILE", help="subtitle files")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only one summary line per file")
    add_cue_options(parser, only=CHECKED)
    add_common_options(parser, quiet=False)
    parser.set_defaults(func=run)


#: A subtitle file larger than this is not one (a feature film's SRT is ~100 KB).
MAX_SUBTITLE_BYTES = 64 * 1024 * 1024


def load_cues(path: Path) -> tuple[list[Cue], int]:
    """The cues of a subtitle file and its time precision in ms; BadInputError naming the file when unreadable."""
    subs, fmt = load_subtitles(path)
    return cues_from_events(subs.events), 10 if fmt in _COARSE else 0


def load_subtitles(path: Path) -> tuple[pysubs2.SSAFile, str]:
    """A subtitle file in any encoding this tool reads, as pysubs2 holds it (styles and tags kept), and its format
    (srt, ass, ssa, vtt...); BadInputError naming the file when it cannot be read."""
    found = read_subtitle(path)
    return found.subs, found.fmt


def read_subtitle(path: Path) -> SubtitleFile:
    """A subtitle file from outside as it came (text, encoding, format, events: funasr_subs/subfile); BadInputError
    naming the file when it cannot be read."""
    if path.suffix.lower() == ".lrc":  # before reading it: pysubs2 would call it "not a subtitle file"
        raise BadInputError(
            "is LRC lyrics, which have no end times or lines to measure: give the SRT, ASS or VTT made with it "
            "(--format srt,lrc)",
            path=path,
        )
    try:
        data = read_regular_bytes(path, MAX_SUBTITLE_BYTES)  # a named pipe is refused, not waited on
    except FileNotFoundError:
        raise BadInputError("file not found: check the path", path=path) from None
    except IsADirectoryError:
        raise BadInputError("is a folder: give subtitle files", path=path) from None
    except OSError as exc:
        if too_long(exc):
            raise BadInputError(too_long_message(path)) from None
        if path.is_dir():
            raise BadInputError("is a folder: give subtitle files", path=path) from None
        raise BadInputError(f"cannot be read ({exc.strerror})", path=path) from None
    try:
        found = subfile.parse(data, path.suffix)
    except subfile.UnknownEncodingError as exc:
        raise BadInputError(f"{exc}: is it a subtitle file?", path=path) from None
    except ValueError as exc:
        raise BadInputError(str(exc), path=path) from None
    text = found.text
    if not found.subs.events and text.strip() and not any(mark in text for mark in _SUBTITLE_MARKS):
        raise BadInputError("holds no subtitle cues (SRT, ASS or VTT expected): is it a subtitle file?", path=path)
    return found


def cue_settings_from_args(args: argparse.Namespace, *extra_dests: str) -> CueSettings:
    """CueSettings from config, environment and the cue flags (``extra_dests`` are this command's own flags)."""
    values = {k: v for k, v in vars(args).items() if k not in extra_dests}
    settings = settings_from_args(argparse.Namespace(**values))
    if settings.max_lines is None and settings.layout is None:
        # a file is held to the standard's limit of two lines (one line is how we write, not a rule to enforce)
        settings = settings.replace(max_lines=2)
    return settings.cue_settings()


def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.log_file)
    settings = cue_settings_from_args(args, "quiet")
    validate(settings)
    worst = 0
    for path in args.paths:
        try:
            cues, tolerance = load_cues(path)
        except FunasrSubsError as exc:
            log.error("error: %s", exc)
            worst = 2
            continue
        report = check_cues(cues, settings, tolerance_ms=tolerance)
        sys.stdout.write(format_report(report, shown(path), details=not args.quiet) + "\n")
        if not report.ok:
            worst = max(worst, 1)
    sys.stdout.flush()
    return worst
