"""The service's own settings: the ``[serve]`` table of the TOML config, ``FUNASR_SUBS_SERVE_*``, then flags."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from funasr_subs.config import ENV_PREFIX, Settings, config_file_path, default_state_dir, read_table
from funasr_subs.errors import ConfigError
from funasr_subs.service.pathmap import PathMap

TABLE = "serve"
SERVE_ENV_PREFIX = ENV_PREFIX + "SERVE_"


@dataclass(frozen=True)
class ServiceConfig:
    """Everything ``serve`` (and ``watch --http``) needs besides the transcription Settings."""

    settings: Settings = field(default_factory=Settings)
    host: str = "127.0.0.1"
    port: int = 9000
    token: str | None = None
    roots: tuple[Path, ...] = ()  # library roots: request paths must resolve inside one
    path_map: PathMap = field(default_factory=PathMap)
    # each media server's own view of the library, when it mounts it elsewhere than Sonarr/Radarr (else path_map)
    jellyfin_path_map: PathMap = field(default_factory=PathMap)
    emby_path_map: PathMap = field(default_factory=PathMap)
    plex_path_map: PathMap = field(default_factory=PathMap)
    state_dir: Path | None = None  # the watch daemon's state folder (default: the user's state folder)
    max_upload_mb: int = 512  # /asr uploads; raw PCM of a 4.5-hour film is ~520 MB
    asr_jobs: int = 2  # /asr requests sent to the FunASR server at once (the rest wait)
    upload_dir: Path | None = None  # where uploads are spooled (default: the system temp folder)
    jellyfin_url: str | None = None
    jellyfin_api_key: str | None = None
    jellyfin_user_id: str | None = None  # only for Jellyfin versions that need a user to look items up
    emby_url: str | None = None
    emby_api_key: str | None = None
    plex_url: str | None = None
    plex_token: str | None = None
    media_server_timeout: float = 10.0  # seconds for each call to Jellyfin/Emby/Plex
    refresh_library: bool = False  # ask the media servers to rescan after a subtitle is written
    header_timeout: float = 15.0  # seconds a connection may take to send a request's headers (and stay idle)
    max_connections: int = 256  # open connections; beyond it the longest-idle one is closed

    def __post_init__(self) -> None:
        if not self.host or not self.host.strip():
            raise ConfigError("[serve] host is empty: give an address to listen on, e.g. 127.0.0.1 or 0.0.0.0")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is not a TCP port (0-65535)")
        if self.max_upload_mb < 1:
            raise ConfigError("max_upload_mb must be at least 1")
        if self.asr_jobs < 1:
            raise ConfigError("asr_jobs must be at least 1")
        if not (math.isfinite(self.header_timeout) and 0 < self.header_timeout <= 3600):
            raise ConfigError("header_timeout must be a number of seconds above 0 and at most 3600")
        if not 1 <= self.max_connections <= 100_000:
            raise ConfigError("max_connections must be a whole number from 1 to 100000")
        if not (math.isfinite(self.media_server_timeout) and 0 < self.media_server_timeout <= 3600):
            raise ConfigError("media_server_timeout must be a number of seconds above 0 and at most 3600")
        for name in ("jellyfin_url", "emby_url", "plex_url"):
            url = getattr(self, name)
            if url is not None and not url.startswith(("http://", "https://")):
                raise ConfigError(f"{name} {url!r} must start with http:// or https://")

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    def server_map(self, server: str) -> PathMap:
        """How ``server`` (``jellyfin``, ``emby``, ``plex``) names our files: its own path map, else ``path_map``."""
        own: PathMap = getattr(self, f"{server}_path_map")
        return own if own.rules else self.path_map

    @property
    def effective_state_dir(self) -> Path:
        return self.state_dir if self.state_dir is not None else default_state_dir()


_SKIP = {"settings"}
_PATHS = {"state_dir", "upload_dir"}
_INTS = {"port", "max_upload_mb", "asr_jobs", "max_connections"}
_FLOATS = {"media_server_timeout", "header_timeout"}
_BOOLS = {"refresh_library"}
PATH_MAPS = ("path_map", "jellyfin_path_map", "emby_path_map", "plex_path_map")
KEYS = tuple(f.name for f in fields(ServiceConfig) if f.name not in _SKIP)
_TOP_LEVEL = frozenset(f.name for f in fields(Settings)) - set(KEYS)


def _coerce(key: str, value: Any, source: str) -> Any:
    try:
        if key == "roots":
            items = value.split(os.pathsep) if isinstance(value, str) else list(value)
            return tuple(Path(str(v)).expanduser() for v in items if str(v).strip())
        if key in PATH_MAPS:
            if isinstance(value, Mapping):
                return PathMap.parse(f"{k}={v}" for k, v in value.items())
            items = value.split(";") if isinstance(value, str) else list(value)
            return PathMap.parse(str(v) for v in items if str(v).strip())
        if key in _PATHS:
            return Path(str(value)).expanduser()
        if key in _INTS:
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            return int(value)
        if key in _FLOATS:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if key in _BOOLS:
            if isinstance(value, bool):
                return value
            text = str(value).lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        text = str(value).strip()
        return text or None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: bad value for {key!r}: {value!r} ({exc})") from None


def _from_mapping(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = raw_key.replace("-", "_")
        if key == "root":
            key = "roots"
        if key in _TOP_LEVEL:  # e.g. on_done: every command that writes subtitles uses it, not only serve
            raise ConfigError(
                f"{source}: {raw_key!r} is not a [serve] setting but a top-level one: put it above the first table "
                f"(or use FUNASR_SUBS_{key.upper()})"
            )
        if key not in KEYS:
            raise ConfigError(f"{source}: unknown [serve] setting {raw_key!r} (known: {', '.join(KEYS)})")
        out[key] = _coerce(key, value, source)
    return out


def load_service_config(
    settings: Settings,
    flags: Mapping[str, Any] | None = None,
    *,
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServiceConfig:
    """``[serve]`` table, then ``FUNASR_SUBS_SERVE_<KEY>`` variables, then ``flags`` (None values ignored).

    ``roots`` and the path maps given as flags replace the config file's lists. In the environment, roots are
    separated by ``os.pathsep`` and path maps by ``;``. When no ``state_dir`` is set, the ``[watch]`` table's is used.
    """
    environ = os.environ if environ is None else environ
    path, _ = config_file_path(config_path, environ)
    merged = _from_mapping(read_table(TABLE, config_path, environ), f"{path} [{TABLE}]")
    env = {k[len(SERVE_ENV_PREFIX) :].lower(): v for k, v in environ.items() if k.startswith(SERVE_ENV_PREFIX)}
    merged.update(_from_mapping(env, "environment"))
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    merged.update(_from_mapping(given, "command line"))
    if "state_dir" not in merged:
        watch = read_table("watch", config_path, environ)
        watch_dir = watch.get("state_dir") or watch.get("state-dir")
        if watch_dir:
            merged["state_dir"] = Path(str(watch_dir)).expanduser()
    return ServiceConfig(settings=settings, **merged)
