"""``funasr-subs sync SUBTITLE [MEDIA|SIDECAR|REPLY.json]``: re-time an existing subtitle to the speech."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from funasr_subs import subfile
from funasr_subs.check import check_cues, cues_from_events, format_report
from funasr_subs.commands import stdout
from funasr_subs.commands.check import cue_settings_from_args, read_subtitle
from funasr_subs.commands.common import (
    add_common_options,
    add_cue_options,
    add_request_options,
    add_server_options,
    settings_from_args,
    setup_logging,
    sigterm_as_interrupt,
)
from funasr_subs.commands.retime import read_source
from funasr_subs.errors import BadInputError, ConfigError, NoSpeechError, OutputError
from funasr_subs.media.activity import Level
from funasr_subs.media.hear import hear
from funasr_subs.media.probe import MEDIA_SUFFIXES
from funasr_subs.model import Cue, Transcript
from funasr_subs.pipeline import current_sidecar
from funasr_subs.safeio import read_regular_bytes
from funasr_subs.sidecar import SUFFIX, is_sidecar, sidecar_path_for, try_read_sidecar
from funasr_subs.subfile import SubtitleFile
from funasr_subs.sync import SyncResult, sync
from funasr_subs.writers import atomic_write_bytes, check_replaceable

log = logging.getLogger(__name__)

HELP = """\
examples:
  funasr-subs sync film.zh.srt                     # speech of film.mkv beside it; writes film.zh.synced.srt
  funasr-subs sync film.zh.ass film.funasr.json -o fixed.ass    # from the saved reply: no server needed
  funasr-subs sync film.en.srt film.mkv --in-place # keeps the original as film.en.orig.srt
  funasr-subs sync "{{subtitles}}" "{{episode}}" --in-place    # Bazarr's post-processing command
  funasr-subs sync film.en.srt film.mkv --method pattern      # no server: the speech heard in the audio

The second argument is what 'retime' takes (media with a sidecar, a sidecar, a reply JSON) or media to recognise
(the sidecar is then saved, so the next sync needs no server); with --method pattern, media without a sidecar
is only listened to (decoded, its speech heard), no server. Without it, the media beside the subtitle with the
same name (the language tag dropped: film.zh.srt -> film.mkv) is used. Only times change: text, styles, positions
and tags stay as they are.

exit status: 0 synced, 1 no alignment to trust (nothing written), 2 a file cannot be read or used.
"""

#: Names for the frame-rate ratios the report meets most.
_RATIO_NAMES = {
    round(25 / (24000 / 1001), 4): "23.976 fps speech, subtitle timed for 25 fps",
    round((24000 / 1001) / 25, 4): "25 fps speech, subtitle timed for 23.976 fps",
    round(24 / (24000 / 1001), 4): "23.976 fps speech, subtitle timed for 24 fps",
    round((24000 / 1001) / 24, 4): "24 fps speech, subtitle timed for 23.976 fps",
    round(25 / 24, 4): "24 fps speech, subtitle timed for 25 fps",
    round(24 / 25, 4): "25 fps speech, subtitle timed for 24 fps",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="re-time an existing subtitle to the speech, cue by cue",
        description="Re-time a subtitle (SRT, ASS, VTT: a download, a fansub) to the speech of its media: by its text "
        "where it matches what FunASR recognised (offsets, frame rates, cuts and inserted scenes), else by the "
        "pattern of cues and speech (a subtitle in another language).",
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("subtitle", type=Path, metavar="SUBTITLE", help="the subtitle file to re-time")
    parser.add_argument(
        "source", type=Path, nargs="?", metavar="MEDIA|SIDECAR|REPLY", help="the media, its sidecar or a reply JSON"
    )
    out = parser.add_argument_group("sync")
    where = out.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here (format from the suffix)")
    where.add_argument(
        "--in-place", action="store_true", help="replace SUBTITLE; the first original is kept as <name>.orig<ext>"
    )
    out.add_argument(
        "--method", choices=["auto", "text", "pattern"], default="auto", help="text, timing pattern or auto (default)"
    )
    out.add_argument("--check", action="store_true", help="add the rule check of the synced cues to the report")
    add_server_options(parser)
    add_request_options(parser, jobs=False)
    add_cue_options(parser)
    add_common_options(parser)
    parser.set_defaults(func=run)


# --- inputs -------------------------------------------------------------------------------------------------
def media_beside(subtitle: Path) -> Path:
    """The media (or its sidecar) a subtitle belongs to: same name, language and other tags dropped one by one."""
    stem = subtitle.name[: -len(subtitle.suffix)] if subtitle.suffix else subtitle.name
    names = [stem]
    while "." in stem:
        stem = stem.rsplit(".", 1)[0]
        names.append(stem)
    folder = subtitle.parent
    for name in names:
        for suffix in sorted(MEDIA_SUFFIXES):
            for candidate in (folder / f"{name}{suffix}", folder / f"{name}{suffix.upper()}"):
                if candidate.is_file():
                    return candidate
        if (folder / f"{name}{SUFFIX}").is_file():
            return folder / f"{name}{SUFFIX}"
    raise BadInputError(
        "no media with the same name beside it: give the media, its sidecar or a reply JSON as the second argument",
        path=subtitle,
    )


@dataclass(frozen=True)
class Speech:
    """What sync compares the subtitle with: the recognised text and, when the audio was listened to, the speech
    heard in it (media timeline, like the transcript) and how long the audio is."""

    transcript: Transcript
    heard: tuple[tuple[int, int], ...] | None = None
    end_ms: int = 0
    #: the speech band's level kept beside them (None: an older sidecar, or not listened)
    level: Level | None = None
    #: heard in the media just now (no sidecar, nothing recognised)
    listened: bool = False


def speech_of(source: Path, args: argparse.Namespace) -> Speech:
    """The recognised speech: from a sidecar or reply (as ``retime`` reads them), or by recognising the media; or,
    with ``--method pattern`` and no current sidecar that heard the media, only the speech heard in its audio
    (decoded here: no server)."""
    if not (is_sidecar(source) or source.suffix.lower() in (".json", ".jsonl")):
        if not source.is_file():  # (a named pipe would hold ffmpeg until its stall timeout)
            found = source.exists() or source.is_symlink()
            what = "is not a regular file (a folder, named pipe or device): give a media file"
            raise BadInputError(what if found else "file not found: check the path", path=source)
        settings = settings_from_args(args)
        side = try_read_sidecar(sidecar_path_for(source, None))
        if args.method == "pattern" and (side is None or side.speech is None or not side.matches(source)):
            heard = asyncio.run(hear(source, settings.audio_track))
            return Speech(Transcript("", ()), heard.speech.intervals, heard.end_ms, heard.speech.level, listened=True)
        current_sidecar(source, settings.replace(output_dir=None))
    read = read_source(source, None)
    side = read.sidecar
    if side is None or side.speech is None:
        return Speech(read.transcript)
    return Speech(read.transcript, side.speech.intervals, side.offset_ms + side.duration_ms, side.speech.level)


def output_for(subtitle: Path, args: argparse.Namespace) -> Path:
    if args.in_place:
        return subtitle
    if args.output is not None:
        return Path(args.output)
    return subtitle.with_name(f"{subtitle.stem}.synced{subtitle.suffix}")


def backup_for(subtitle: Path) -> Path:
    return subtitle.with_name(f"{subtitle.stem}.orig{subtitle.suffix}")


# --- output -------------------------------------------------------------------------------------------------
#: What ``-o FILE`` may end with (as ``retime -o``, plus .ssa: sync keeps an SSA file's own format).
OUTPUT_SUFFIXES = ("srt", "ass", "ssa", "vtt")


def _format_for(path: Path, fallback: str, *, named: bool) -> str:
    """The format to write: from ``-o``'s suffix, which must be one of OUTPUT_SUFFIXES (``named``); else the
    subtitle's own format (its own name: --in-place, or the .synced name beside it)."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt in OUTPUT_SUFFIXES:
        return fmt
    if named:
        raise ConfigError(f"-o {path}: the suffix must be .srt, .ass, .ssa or .vtt")
    return fallback


def retimed(original: SubtitleFile, cues: Sequence[Cue], fmt: str, subtitle: Path) -> bytes:
    """The file with the new times and nothing else changed, in the encoding it came in (funasr_subs/subfile)."""
    try:
        return subfile.retimed_bytes(original, [(c.start_ms, c.end_ms) for c in cues], fmt)
    except subfile.StructureError as exc:
        raise BadInputError(
            f"cannot be re-timed without changing more than its times ({exc}); nothing written", path=subtitle
        ) from None


# --- the report ---------------------------------------------------------------------------------------------
def _clock(ms: int) -> str:
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    return f"{sign}{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _ratio_text(ratio: float) -> str:
    if abs(ratio - 1.0) < 5e-5:
        return "1 (no frame-rate change)"
    name = _RATIO_NAMES.get(round(ratio, 4))
    return f"{ratio:.5f}" + (f" ({name})" if name else "")


def report_lines(result: SyncResult, cues: Sequence[Cue], name: str) -> list[str]:
    if result.method == "text":
        method = "by text (the subtitle's words found in the speech)"
    elif result.pattern_from == "heard":
        method = "by timing pattern (cues against the speech heard in the audio: the text does not match the speech)"
    else:
        method = "by timing pattern (cues against the gaps between recognised words: the text does not match)"
    lines = [f"{name}: synced {method}"]
    if result.pattern_from == "tokens":
        lines.append(f"  {NOT_HEARD}")
    assert result.time_map is not None
    first = result.time_map.pieces[0]
    lines.append(f"  offset {first.offset_ms / 1000:+.2f} s, frame-rate ratio {_ratio_text(result.ratio)}")
    for at, jump in result.time_map.splits():
        what = "later (a scene inserted, or a cut in the subtitle's release)" if jump > 0 else "earlier (a cut)"
        lines.append(f"  split at {_clock(at)} (subtitle time): from there {abs(jump) / 1000:.2f} s {what}")
    if result.pattern_from != "heard":
        placed = sum(1 for p in result.placements if p.by_text)
        lines.append(f"  placed by their own text: {placed} of {len(cues)} cues ({result.by_text:.1%})")
    for i in result.least_sure():
        p = result.placements[i]
        text = cues[i].text.replace("\n", " ")
        text = text if len(text) <= 30 else text[:29] + "…"
        if result.method == "text":
            why = f"{p.doubt_ms / 1000:.1f} s from the nearest cue placed by its text"
        elif result.pattern_from == "heard":
            why = f"{p.doubt_ms / 1000:.1f} s of it or the pauses around it disagree with the speech heard"
        else:
            why = f"{p.doubt_ms / 1000:.1f} s from the nearest start of speech"
        lines.append(f"  least sure: cue {i + 1} at {_clock(p.start_ms)}, {why}: {text}")
    return lines


#: Said when the timing pattern had only the reply's token gaps to go by.
NOT_HEARD = (
    "(no speech activity recorded: a sidecar made with --no-speech-activity or by an older version, or a bare "
    "reply; FunASR's token times hide most pauses, so transcribe again for a surer sync)"
)


# --- the command --------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.log_file)
    with sigterm_as_interrupt():  # (ffmpeg and a server's request stopped, exit 130: not a death by the signal)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    subtitle: Path = args.subtitle
    # the settings, checked before any work (a bad --fps with --check was refused after the subtitle was written)
    rules = cue_settings_from_args(args, *_OWN_DESTS)
    original = read_subtitle(subtitle)
    cues = cues_from_events(original.subs.events)
    if not cues:
        raise BadInputError("holds no cues to sync", path=subtitle)
    target = output_for(subtitle, args)
    out_fmt = _format_for(target, original.fmt, named=args.output is not None)
    check_replaceable(target)  # before any work: a link or a device (-o /dev/full) is never replaced
    if args.in_place:
        check_replaceable(backup_for(subtitle))
    source = args.source if args.source is not None else media_beside(subtitle)
    speech = speech_of(source, args)
    if speech.listened and not speech.heard:
        raise NoSpeechError("no speech was heard in its audio: nothing to sync to", path=source)
    if not speech.transcript.tokens and not (speech.heard and args.method == "pattern"):
        raise NoSpeechError("no speech was recognised: nothing to sync to", path=source)
    result = sync(cues, speech.transcript, args.method, speech.heard, speech.end_ms, speech.level)
    if not result.trusted:
        log.error("error: %s: no alignment it can trust (%s); nothing written", subtitle, result.reason)
        if result.pattern_from == "tokens":
            log.error("%s", NOT_HEARD)
        return 1
    synced = result.cues(cues)
    data = retimed(original, synced, out_fmt, subtitle)
    if args.in_place:
        backup = backup_for(subtitle)
        if not backup.exists():
            atomic_write_bytes(backup, subtitle.read_bytes(), elsewhere="-o FILE")
        else:
            log.info("%s kept: it already holds the first original", backup)
    atomic_write_bytes(target, data, elsewhere="-o FILE")
    if read_regular_bytes(target, len(data) + 1) != data:  # what the disk holds now, not what we meant to write
        raise OutputError(f"{target} does not read back as written: check the disk (the original is kept)")
    report = report_lines(result, cues, str(subtitle))
    if speech.listened:
        report.insert(1, f"  speech heard in {source} itself (no sidecar; nothing recognised, no server)")
    if args.check:
        check = check_cues(synced, rules, tolerance_ms=10 if out_fmt in ("ass", "ssa") else 0)
        report.append(format_report(check, str(target), limit=10))
    kept = f"{original.encoding.name}, as it came"
    report.append(f"wrote {target} ({kept}" + (f"; the original is {backup_for(subtitle)})" if args.in_place else ")"))
    stdout.line("\n".join(report))
    return 0


#: This command's own argparse destinations (not settings).
_OWN_DESTS = ("subtitle", "source", "output", "in_place", "method", "check", "func", "command")
