"""Media from outside opened as the single file it is: ffmpeg's input options, and what its refusal means (pure).

ffmpeg picks a demuxer from a file's content, not its name, and several demuxers read *other* files: an HLS playlist
(``#EXTM3U``) or DASH manifest names segments anywhere on the host, an ``ffconcat`` script lists files, ``image2``
expands ``%d`` patterns and globs into a sequence, IMF and the like follow references. An upload (or a file dropped
in a watched folder) holding such a text would make us transcribe — and send to the FunASR server — whatever file it
names, past every root and every size limit. So every ffmpeg and ffprobe run on media we did not make gets:

- ``-format_whitelist``: only the demuxers of real media containers (:data:`DEMUXERS`), none of which opens another
  file (``mov`` could, through data references, but only with ``-enable_drefs 1``, off by default);
- ``-protocol_whitelist file``: the input is read through the ``file`` protocol only, and so is anything a demuxer
  might try to open (nested opens inherit the list);
- the input named ``file:<absolute path>``: no other protocol is ever guessed from the name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

#: Demuxers of real media containers and raw audio streams (ffmpeg's names; a demuxer with several names, such as
#: ``mov,mp4,m4a,3gp,3g2,mj2`` or ``matroska,webm``, is allowed when one of them is listed). None of them reads any
#: file but the one it is given. Refused, among others: hls, dash, concat, image2, imf, ffmetadata, lavfi, sdp, tty.
DEMUXERS = (
    # containers
    "matroska",
    "mov",
    "avi",
    "asf",
    "flv",
    "live_flv",
    "mpegts",
    "mpeg",
    "rm",
    "ogg",
    "mxf",
    "nut",
    "dv",
    "wtv",
    # audio files and raw audio streams
    "wav",
    "w64",
    "aiff",
    "caf",
    "au",
    "voc",
    "mp3",
    "aac",
    "loas",
    "ac3",
    "eac3",
    "dts",
    "dtshd",
    "truehd",
    "mlp",
    "flac",
    "ape",
    "wv",
    "tta",
    "tak",
    "shn",
    "mpc",
    "mpc8",
    "amr",
    "amrnb",
    "amrwb",
    "oma",
    "xwma",
    "dsf",
)
#: The only protocol an input is read through.
PROTOCOLS = ("file",)

_REFUSED = re.compile(r"\[([\w,]+) @ (?:0x)?[0-9a-fA-F]+\](?: \[\w+\])? Format not on whitelist")


def input_options() -> dict[str, str]:
    """ffmpeg's and ffprobe's input options for a file from outside (see the module docstring)."""
    return {"format_whitelist": ",".join(DEMUXERS), "protocol_whitelist": ",".join(PROTOCOLS)}


def input_argv() -> list[str]:
    """:func:`input_options` as command-line arguments (to go before ``-i`` or the input name)."""
    return [arg for name, value in input_options().items() for arg in (f"-{name}", value)]


def input_url(path: Path) -> str:
    """The input as ffmpeg is given it: ``file:`` and the absolute path (never taken for an option or a URL)."""
    return f"file:{path.absolute()}"


def refusal(stderr_lines: Iterable[str]) -> str | None:
    """The one-line reason when ffmpeg's (or ffprobe's) error output shows that it refused the file's format as one
    that is not a single media file; None otherwise."""
    for line in stderr_lines:
        found = _REFUSED.search(line)
        if found:
            kind = found.group(1).split(",")[0]
            return (
                f"refused: ffmpeg reads it as {kind!r}, a format that names other files or streams (a playlist, a "
                "concat list, an image sequence) or is not a media container; only a single media file is opened "
                "(make one with ffmpeg first)"
            )
    return None
