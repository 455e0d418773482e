"""The argument parser every command uses: no abbreviated options, and a close option suggested for a typo."""

from __future__ import annotations

import argparse
import difflib
import math
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

#: The longest time an option takes: a day (longer settle, poll, grace or progress values are mistakes).
MAX_SECONDS = 86_400.0


def seconds(value: str) -> float:
    """An argparse ``type``: a number of seconds from 0 to :data:`MAX_SECONDS`."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    if not math.isfinite(number) or number > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{value!r} is out of range: give seconds from 0 to {MAX_SECONDS:g}")
    return number


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` without prefix matching (``--form`` is not ``--format``: a later option could
    make it ambiguous), whose "unrecognized arguments" error comes from the sub-command that was chosen, with its
    usage, and suggests the close option (``--fromat``: did you mean ``--format``?). Sub-command parsers are made
    of this class too (argparse uses the parent's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        argv = list(sys.argv[1:] if args is None else args)
        parsed, extra = self.parse_known_args(argv, namespace)
        if not extra:
            return parsed
        chosen = self._chosen(parsed)
        command = getattr(parsed, "command", None)
        if chosen is not self and command in argv and not any(e.startswith("-") for e in extra):
            # paths after options (``check a.srt --max-cps 12 b.srt``): argparse leaves them over; parse the
            # sub-command's words again with positionals and options intermixed
            rest = argv[argv.index(command) + 1 :]
            return chosen.parse_intermixed_args(rest, parsed)
        chosen.unrecognized(extra)

    def _chosen(self, parsed: argparse.Namespace) -> Parser:
        """The sub-command parser that was used (this one when there is none)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                sub = action.choices.get(getattr(parsed, action.dest, None) or "")
                if isinstance(sub, Parser):
                    return sub._chosen(parsed)
        return self

    def unrecognized(self, extra: Sequence[str]) -> NoReturn:
        message = f"unrecognized arguments: {' '.join(extra)}"
        options = sorted(o for o in self._option_string_actions if o.startswith("--"))
        for token in extra:
            if token.startswith("--"):
                close = difflib.get_close_matches(token.split("=", 1)[0], options, n=1, cutoff=0.6)
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
        self.error(message)
