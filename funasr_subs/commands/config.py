"""``funasr-subs config``: print the effective configuration (file, then environment, then flags) as TOML."""

from __future__ import annotations

import argparse
import json
from typing import Any

from funasr_subs.commands.common import add_transcribe_options, settings_from_args
from funasr_subs.config import default_config_path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "config",
        help="print the effective configuration",
        description=f"Print the settings in force, as TOML (the default config file is {default_config_path()}).",
    )
    add_transcribe_options(parser)
    parser.set_defaults(func=run)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ "
            + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)} = {_toml_value(v)}" for k, v in value.items())
            + " }"
        )
    return json.dumps(str(value), ensure_ascii=False)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    lines = [f"# effective funasr-subs settings (config file: {args.config or default_config_path()})"]
    for key, value in settings.to_dict().items():
        lines.append(f"{key} = {_toml_value(value)}")
    cues = settings.cue_settings()
    lines.append(f"# cue rules in force for profile {cues.profile!r}: ")
    lines.append("# " + ", ".join(f"{k}={v}" for k, v in vars_of(cues).items()))
    print("\n".join(lines))
    return 0


def vars_of(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}
