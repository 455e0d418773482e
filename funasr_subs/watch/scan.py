"""Which files in watched folders qualify as media to subtitle, and which per-folder hotwords apply to them."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from funasr_subs.hotwords import fit_hotwords, load_hotwords_file
from funasr_subs.media.probe import MEDIA_SUFFIXES

#: The media suffixes a folder walk picks up (the same set as ``transcribe``), lower case without the dot.
DEFAULT_SUFFIXES: frozenset[str] = frozenset(s.lstrip(".") for s in MEDIA_SUFFIXES)
#: Names downloaders and copiers give files that are not finished yet (compared in lower case).
PARTIAL_SUFFIXES: tuple[str, ...] = (
    ".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".!qb", ".!ut", ".filepart", ".aria2",
    ".opdownload", ".syncthing", ".unfinished",
)  # fmt: skip
#: yt-dlp's intermediates: ``name.f137.mp4`` (one format before merging), ``name.temp.mp4`` (post-processing).
_PARTIAL_NAME = re.compile(r"\.(f\d+|temp|part-frag\d+)\.[^.]+$", re.IGNORECASE)
IGNORE_MARKER = ".funasr-subs-ignore"
HOTWORDS_NAME = "hotwords.txt"


def parse_suffixes(text: str) -> frozenset[str]:
    """``"mkv, .MP4,webm"`` → ``{"mkv", "mp4", "webm"}``; empty items are dropped."""
    return frozenset(s.strip().lower().lstrip(".") for s in text.split(",") if s.strip().lstrip("."))


def is_partial_name(name: str) -> bool:
    """True for names of unfinished downloads/copies (``x.mkv.part``, ``x.mkv.!qB``, ``x.f137.mp4``...)."""
    lower = name.lower()
    return lower.endswith(PARTIAL_SUFFIXES) or _PARTIAL_NAME.search(lower) is not None


def name_qualifies(name: str, suffixes: frozenset[str]) -> bool:
    """A file name that is visible, finished and has a media suffix."""
    if not name or name.startswith(".") or name.startswith("~$") or is_partial_name(name):
        return False
    _, dot, ext = name.rpartition(".")
    return bool(dot) and ext.lower() in suffixes


def root_of(path: Path, roots: Iterable[Path]) -> Path | None:
    """The deepest watched root containing ``path`` (None when outside all of them)."""
    best: Path | None = None
    for root in roots:
        if path.is_relative_to(root) and (best is None or len(root.parts) > len(best.parts)):
            best = root
    return best


def real_root(path: Path, roots: Iterable[Path]) -> Path | None:
    """The watched root holding ``path``'s real location (every link resolved), None when a link leads out of them all.

    The HTTP webhooks refuse such a link the same way (``security.admit_path``): a symlink in a watched folder never
    makes the daemon read a file elsewhere on the host.
    """
    try:
        real = Path(os.path.realpath(path))
    except (OSError, ValueError):
        return None
    return root_of(real, roots)


def folder_ignored(folder: Path, root: Path) -> bool:
    """``folder`` is outside ``root``, hidden below it, a symlink or inside one below it, or has a
    ``.funasr-subs-ignore`` in it or above it."""
    try:
        rel = folder.relative_to(root)
    except ValueError:
        return True
    if any(part.startswith(".") for part in rel.parts):
        return True
    while True:
        if folder != root and folder.is_symlink():  # symlinked folders are not followed (loops, files elsewhere)
            return True
        if (folder / IGNORE_MARKER).exists():
            return True
        if folder == root or folder == folder.parent:
            return False
        folder = folder.parent


def path_qualifies(path: Path, root: Path, suffixes: frozenset[str]) -> bool:
    """``path`` (inside ``root``) is media to process: its name qualifies and its folder is not hidden or ignored."""
    return name_qualifies(path.name, suffixes) and not folder_ignored(path.parent, root)


def iter_media(root: Path, suffixes: frozenset[str]) -> Iterator[tuple[Path, os.stat_result]]:
    """Every qualifying regular file under ``root`` (recursive) with its stat; hidden and ignored folders pruned.

    Unreadable folders are skipped. Symlinked folders are not followed (no loops); symlinked files are (the caller
    checks with :func:`real_root` that they lead to a file inside a watched folder).
    """
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            continue
        if any(e.name == IGNORE_MARKER for e in entries):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith("."):
                        stack.append(Path(entry.path))
                elif name_qualifies(entry.name, suffixes) and entry.is_file():
                    yield Path(entry.path), entry.stat()
            except OSError:
                continue


class HotwordsLookup:
    """Per-folder ``hotwords.txt`` files merged from the watched root down to the media's folder (nearest wins).

    Parsed files are cached by (size, mtime), so editing a hotwords file takes effect for the next job.
    Raises ConfigError (naming file and line) for a malformed file.
    """

    def __init__(self, name: str = HOTWORDS_NAME) -> None:
        self.name = name
        self._cache: dict[Path, tuple[tuple[int, int], dict[str, int]]] = {}
        self._lock = threading.Lock()

    def _load(self, path: Path) -> dict[str, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        sig = (st.st_size, st.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(path)
        if cached is not None and cached[0] == sig:
            return cached[1]
        words = fit_hotwords(load_hotwords_file(path), str(path))
        with self._lock:
            self._cache[path] = (sig, words)
        return words

    def folders(self, media: Path, root: Path | None) -> list[Path]:
        """The folders searched, nearest last: root ... media's folder (just the media's folder without a root)."""
        folder = media.parent
        if root is None or not folder.is_relative_to(root):
            return [folder]
        chain = [folder]
        while chain[-1] != root and chain[-1] != chain[-1].parent:
            chain.append(chain[-1].parent)
        return chain[::-1]

    def for_media(self, media: Path, root: Path | None, base: Mapping[str, int] | None = None) -> dict[str, int]:
        """``base`` (the global hotwords) updated by every ``hotwords.txt`` from ``root`` down to the media's folder."""
        words = dict(base or {})
        for folder in self.folders(media, root):
            found = self._load(folder / self.name)
            if found:
                words.update(found)
        return words
