"""``funasr-subs config``: print the effective configuration (file, then environment, then flags) as TOML.

Top-level transcription and cue settings, then the ``[watch]`` and ``[serve]`` tables as those commands would use
them, with a header saying which config file was read (or that there is none) and which variables were set.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from funasr_subs.commands.common import add_transcribe_options, settings_from_args, setup_logging
from funasr_subs.config import ENV_PREFIX, config_file_path, default_config_path, default_state_dir

#: ``[serve]`` keys whose values are secrets: shown as set or not, never printed.
SECRETS = frozenset({"token", "jellyfin_api_key", "emby_api_key", "plex_token"})


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "config",
        help="print the effective configuration",
        description="Print the settings in force, as TOML: the config file (default "
        f"{default_config_path()}, if present), then FUNASR_SUBS_* variables, then the flags given here. "
        "Includes the [watch] and [serve] tables; secrets are not printed.",
    )
    add_transcribe_options(parser)
    parser.set_defaults(func=run)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple | frozenset | set):
        items = sorted(value) if isinstance(value, frozenset | set) else value
        return "[" + ", ".join(_toml_value(v) for v in items) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return (
            "{ "
            + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)} = {_toml_value(v)}" for k, v in value.items())
            + " }"
        )
    return json.dumps(str(value), ensure_ascii=False)


def _line(key: str, value: Any, unset: str = "not set") -> str:
    """``key = value``, or a comment when there is no value (TOML has no null)."""
    return f"# {key}: {unset}" if value is None else f"{key} = {_toml_value(value)}"


def _source_lines(args: argparse.Namespace) -> list[str]:
    path, _ = config_file_path(args.config, os.environ)  # a named file that is absent failed before this
    state = "read" if path.is_file() else "not present: built-in defaults"
    names = sorted(k for k in os.environ if k.startswith(ENV_PREFIX))
    return [
        "# effective funasr-subs settings: flags > FUNASR_SUBS_* variables > config file > defaults",
        f"# config file: {path} ({state})",
        f"# environment: {', '.join(names) if names else 'no FUNASR_SUBS_* variables'}",
    ]


def _watch_lines(config: Path | None) -> list[str]:
    from funasr_subs.commands.watch import DEFAULTS, watch_table

    values = {**DEFAULTS, **watch_table(config)}
    lines = ["", "[watch]"]
    for key, value in values.items():
        if key == "state_dir" and value is None:
            value = default_state_dir()
        unset = "off (inotify)" if key == "poll" else "the common video and audio suffixes"
        lines.append(_line(key, value if not isinstance(value, Path) else str(value), unset))
    return lines


def _serve_lines(settings: Any, config: Path | None) -> list[str]:
    from funasr_subs.service.config import KEYS, load_service_config

    service = load_service_config(settings, {}, config_path=config)
    lines = ["", "[serve]"]
    for key in KEYS:
        value = getattr(service, key)
        if key in SECRETS:
            lines.append(f"# {key}: {'set (not shown)' if value else 'not set'}")
            continue
        if key == "state_dir":
            value = service.effective_state_dir
        if key.endswith("path_map"):
            value = [f"{rule.source}={rule.target}" for rule in value.rules]
        elif key == "roots":
            value = [str(p) for p in value]
        elif isinstance(value, Path):
            value = str(value)
        lines.append(_line(key, value))
    return lines


def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.log_file)
    settings = settings_from_args(args)
    lines = _source_lines(args)
    for key, value in settings.to_dict().items():
        if key == "on_done":  # its query or user part may be a token
            from funasr_subs.actions.webhook import shown_url

            value = shown_url(value)
        lines.append(f"{key} = {_toml_value(value)}")
    cues = settings.cue_settings()
    lines.append(f"# cue rules in force for profile {cues.profile!r}: ")
    lines.append("# " + ", ".join(f"{k}={v}" for k, v in vars_of(cues).items()))
    lines += _watch_lines(args.config)
    lines += _serve_lines(settings, args.config)
    print("\n".join(lines))
    return 0


def vars_of(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}
