"""``--path-map FROM=TO``: turn a media server's paths into ours (longest matching prefix wins; pure code)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from funasr_subs.errors import ConfigError

_WINDOWS = re.compile(r"^(?:[A-Za-z]:|\\\\)")


def _is_windows(prefix: str) -> bool:
    return bool(_WINDOWS.match(prefix)) or "\\" in prefix


def _norm(prefix: str, windows: bool) -> str:
    """Comparable form of a prefix: forward slashes, no trailing slash, case-folded for Windows paths."""
    if windows:
        prefix = prefix.replace("\\", "/").casefold()
    stripped = prefix.rstrip("/")
    return stripped if stripped else "/"


@dataclass(frozen=True)
class PathMapping:
    """One ``FROM=TO`` rule: ``source`` is the media server's prefix, ``target`` ours."""

    source: str
    target: str

    @property
    def windows(self) -> bool:
        """True when ``source`` is a Windows path (drive letter, UNC or backslashes): matched case-insensitively."""
        return _is_windows(self.source)

    def apply(self, path: str) -> str | None:
        """``path`` with ``source`` replaced by ``target``, or None when ``source`` is not a prefix of it.

        The prefix must end at a path separator: ``/data`` maps ``/data/x`` but not ``/database/x``.
        """
        windows = self.windows
        src = _norm(self.source, windows)
        probe = path.replace("\\", "/") if windows else path
        cmp = probe.casefold() if windows else probe
        if src == "/":
            rest = probe[1:] if cmp.startswith("/") else None
        elif cmp == src:
            rest = ""
        elif cmp.startswith(src + "/"):
            rest = probe[len(src) + 1 :]
        else:
            rest = None
        if rest is None:
            return None
        target = (self.target.rstrip("/\\") if _is_windows(self.target) else self.target.rstrip("/")) or "/"
        if not rest:
            return target
        return f"{target}/{rest}" if target != "/" else f"/{rest}"

    def reverse(self, path: str) -> str | None:
        """The media server's name for one of our paths (``target`` replaced by ``source``), or None."""
        back = PathMapping(self.target, self.source)
        mapped = back.apply(path)
        if mapped is None or not self.windows:
            return mapped
        return mapped.replace("/", "\\")


def parse_mapping(text: str) -> PathMapping:
    """Parse one ``FROM=TO`` rule (split at the first ``=``); raises ConfigError with an example when malformed."""
    source, sep, target = text.partition("=")
    source, target = source.strip(), target.strip()
    if not sep or not source or not target:
        raise ConfigError(f"path map {text!r} must look like FROM=TO, e.g. /data/tv=/mnt/media/tv")
    if not target.startswith("/") and not _is_windows(target):
        raise ConfigError(f"path map {text!r}: TO must be an absolute path on this machine, e.g. /mnt/media/tv")
    return PathMapping(source, target)


@dataclass(frozen=True)
class PathMap:
    """All the rules; :meth:`apply` uses the one whose ``source`` is the longest prefix of the path."""

    rules: tuple[PathMapping, ...] = ()

    @classmethod
    def parse(cls, items: Iterable[str]) -> PathMap:
        return cls(tuple(parse_mapping(item) for item in items))

    def apply(self, path: str) -> str:
        """Map ``path``; unchanged when no rule matches."""
        best: tuple[int, str] | None = None
        for rule in self.rules:
            mapped = rule.apply(path)
            if mapped is not None:
                length = len(_norm(rule.source, rule.windows))
                if best is None or length > best[0]:
                    best = (length, mapped)
        return path if best is None else best[1]

    def reverse(self, path: str) -> str:
        """Our path as the media server knows it (longest ``target`` prefix wins); unchanged when no rule matches."""
        best: tuple[int, str] | None = None
        for rule in self.rules:
            mapped = rule.reverse(path)
            if mapped is not None:
                length = len(_norm(rule.target, False))
                if best is None or length > best[0]:
                    best = (length, mapped)
        return path if best is None else best[1]
