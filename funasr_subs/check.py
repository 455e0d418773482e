"""The subtitle rule checker: which cues break the profile's limits (width, lines, duration, speed, gaps)."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

from funasr_subs.cues.settings import CueSettings
from funasr_subs.cues.text import reading_length, text_width
from funasr_subs.model import Cue

Rule = Literal["width", "lines", "short", "long", "cps", "gap", "overlap", "empty"]

#: Rules in the order the summary lists them, with the words it uses.
RULE_NAMES: dict[Rule, str] = {
    "width": "too wide",
    "lines": "too many lines",
    "short": "too short",
    "long": "too long",
    "cps": "too fast",
    "gap": "gap too small",
    "overlap": "overlap",
    "empty": "empty",
}

_ASS_TAG = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: ``cue`` is the 1-based position of the cue in the file (SRT numbering)."""

    cue: int
    rule: Rule
    start_ms: int
    message: str


@dataclass(frozen=True, slots=True)
class Report:
    """What the checker found in one list of cues."""

    cues: int
    violations: tuple[Violation, ...]
    settings: CueSettings
    #: cues with at least one violation
    bad_cues: int

    @property
    def ok(self) -> bool:
        return not self.violations

    def counts(self) -> dict[Rule, int]:
        """Violations per rule, every rule present (0 when none)."""
        found = Counter(v.rule for v in self.violations)
        return {rule: found.get(rule, 0) for rule in RULE_NAMES}

    def share_ok(self, *rules: Rule) -> float:
        """Fraction of cues (0.0-1.0) that break none of ``rules`` (all rules when none are given)."""
        if not self.cues:
            return 1.0
        wanted = set(rules) or set(RULE_NAMES)
        bad = {v.cue for v in self.violations if v.rule in wanted}
        return 1.0 - len(bad) / self.cues


def cues_from_events(events: Sequence[Any]) -> list[Cue]:
    """Cues from pysubs2 events (an ``SSAFile`` is such a sequence): comments skipped, tags removed, one line each
    ``\\N``."""
    cues: list[Cue] = []
    for event in events:
        if getattr(event, "is_comment", False):
            continue
        text = str(event.text).replace("\\n", "\n").replace("\\N", "\n").replace("\\h", " ")
        text = _ASS_TAG.sub("", text)
        lines = tuple(line.strip() for line in text.split("\n"))
        while lines and not lines[-1]:
            lines = lines[:-1]
        cues.append(Cue(int(event.start), int(event.end), lines))
    return cues


def _ms(ms: int) -> str:
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{sign}{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def _num(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def as_made(settings: CueSettings) -> CueSettings:
    """The limits the cue engine itself keeps with ``settings``: one line a cue may take a second where one line
    cannot be read in the time its speech gives it, so ``--check`` after writing allows two lines there."""
    if settings.max_lines == 1:
        return dataclasses.replace(settings, max_lines=2)
    return settings


def check_cues(cues: Sequence[Cue], settings: CueSettings, *, tolerance_ms: int = 0) -> Report:
    """Every rule the profile sets, for every cue. ``tolerance_ms`` absorbs the time precision of the file format
    (ASS stores centiseconds: 10 ms)."""
    tol = max(tolerance_ms, 0)
    found: list[Violation] = []

    def add(number: int, rule: Rule, start: int, message: str) -> None:
        found.append(Violation(number, rule, start, message))

    for number, cue in enumerate(cues, start=1):
        lines = [line for line in cue.lines if line.strip()]
        duration = cue.end_ms - cue.start_ms
        if not lines:
            add(number, "empty", cue.start_ms, "no text")
            continue
        for idx, line in enumerate(lines, start=1):
            width = text_width(line, settings.profile)
            if width > settings.max_width:
                add(
                    number,
                    "width",
                    cue.start_ms,
                    f"line {idx} is {_num(width)} wide (max {_num(settings.max_width)}): {line}",
                )
        if len(lines) > settings.max_lines:
            add(number, "lines", cue.start_ms, f"{len(lines)} lines (max {settings.max_lines})")
        if duration + tol < settings.min_duration:
            add(number, "short", cue.start_ms, f"shown {duration} ms (min {settings.min_duration})")
        elif duration - tol > settings.max_duration:
            add(number, "long", cue.start_ms, f"shown {duration} ms (max {settings.max_duration})")
        if settings.max_cps > 0:
            chars = reading_length("".join(lines), settings.profile)
            cps = chars * 1000 / max(duration + tol, 1)
            if cps > settings.max_cps:
                add(
                    number,
                    "cps",
                    cue.start_ms,
                    f"{cps:.1f} characters/s (max {_num(settings.max_cps)}): {_num(chars)} characters in {duration} ms",
                )
    order = sorted(range(len(cues)), key=lambda k: (cues[k].start_ms, k))
    for a, b in pairwise(order):
        first, second = cues[a], cues[b]
        gap = second.start_ms - first.end_ms
        if gap < 0:
            add(b + 1, "overlap", second.start_ms, f"starts {-gap} ms before cue {a + 1} ends")
        elif gap + tol < settings.min_gap:
            add(b + 1, "gap", second.start_ms, f"{gap} ms after cue {a + 1} (min {settings.min_gap})")
    found.sort(key=lambda v: (v.cue, list(RULE_NAMES).index(v.rule)))
    return Report(
        cues=len(cues),
        violations=tuple(found),
        settings=settings,
        bad_cues=len({v.cue for v in found}),
    )


def limits_text(settings: CueSettings) -> str:
    """The limits in one phrase, e.g. ``zh: 2 lines of 16, 833-7000 ms, 9 chars/s, gap 83 ms``."""
    return (
        f"{settings.profile}: {settings.max_lines} {'line' if settings.max_lines == 1 else 'lines'} "
        f"of {_num(settings.max_width)}, "
        f"{settings.min_duration}-{settings.max_duration} ms, "
        f"{f'{_num(settings.max_cps)} chars/s' if settings.max_cps > 0 else 'any reading speed'}, "
        f"gap {settings.min_gap} ms"
    )


def cue_count(n: int) -> str:
    """``1 cue``, ``2 cues``."""
    return "1 cue" if n == 1 else f"{n} cues"


def summary_line(report: Report, name: str = "") -> str:
    """One line: how many cues, how many break the rules, per rule."""
    prefix = f"{name}: " if name else ""
    if report.ok:
        return f"{prefix}{cue_count(report.cues)}, all within the rules ({limits_text(report.settings)})"
    counts = ", ".join(f"{n} {RULE_NAMES[rule]}" for rule, n in report.counts().items() if n)
    share = 100.0 * (report.cues - report.bad_cues) / report.cues if report.cues else 100.0
    return (
        f"{prefix}{cue_count(report.cues)}, {report.bad_cues} break the rules ({share:.1f}% ok): {counts} "
        f"({limits_text(report.settings)})"
    )


def format_report(report: Report, name: str = "", *, details: bool = True, limit: int | None = None) -> str:
    """The report as text: one line per violation (cue number, time, rule, what and the limit), then the summary.

    ``limit`` caps the violation lines (the summary still counts everything)."""
    out: list[str] = []
    if details:
        shown = report.violations if limit is None else report.violations[:limit]
        for v in shown:
            out.append(f"  cue {v.cue} ({_ms(v.start_ms)}): {RULE_NAMES[v.rule]}: {v.message}")
        hidden = len(report.violations) - len(shown)
        if hidden > 0:
            out.append(f"  ... and {hidden} more")
    out.append(summary_line(report, name))
    return "\n".join(out)
