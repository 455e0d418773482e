"""Who may call the service and which files it may touch: bind rules, token checks, library roots."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from multidict import MultiMapping

from funasr_subs.errors import BadInputError, ConfigError
from funasr_subs.names import echo
from funasr_subs.service.pathmap import PathMap

#: Names that only this machine can reach (as are all loopback addresses); any other bind address needs a token.
LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
MIN_TOKEN_LENGTH = 16
#: Characters of a refused path a message repeats (a path is at most 4,096 bytes on Linux; a "path" of 1 MB is not).
PATH_ECHO = 300
#: Query parameter carrying the token for senders that cannot set headers (Plex and Emby webhooks).
TOKEN_PARAM = "token"
TOKEN_HINT = "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"


class PathRefusedError(BadInputError):
    """A path from a request or a hook is outside the library roots (or otherwise unusable)."""


def is_local(host: str) -> bool:
    """True when binding ``host`` exposes the service to this machine only (any loopback address: 127.0.0.0/8, ::1)."""
    name = host.strip("[]").lower()
    if name in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_token_setting(host: str, token: str | None) -> None:
    """Refuse to start without a token on a non-local address, or with a guessable token anywhere."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"the service token must be at least {MIN_TOKEN_LENGTH} characters: {TOKEN_HINT}")
    if not is_local(host) and not token:
        raise ConfigError(
            f"binding {host} exposes the service to the network, so a token is required: "
            f"pass --token (or FUNASR_SUBS_SERVE_TOKEN, or token in the [serve] table); {TOKEN_HINT}"
        )


def presented_tokens(headers: Mapping[str, str], query: Mapping[str, Sequence[str]] | MultiMapping[str]) -> list[str]:
    """Every credential the request carries: ``X-Api-Key``, ``Authorization: Bearer``/``Basic``, ``?token=``."""
    found: list[str] = []
    api_key = headers.get("X-Api-Key")
    if api_key:
        found.append(api_key.strip())
    auth = headers.get("Authorization") or ""
    scheme, _, value = auth.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        found.append(value.strip())
    elif scheme.lower() == "basic" and value.strip():
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError):  # not base64 (bytes that are not ASCII too), or not UTF-8 inside
            found.append(value.strip())  # a credential all the same: a wrong one (401), not none
        else:
            found.extend(v for v in (password, user) if v)  # http://any:TOKEN@host or http://TOKEN@host
    values = query.getall(TOKEN_PARAM, []) if isinstance(query, MultiMapping) else query.get(TOKEN_PARAM, ())
    found.extend(v for v in values if v)
    return found


def token_matches(expected: str, candidates: Iterable[str]) -> bool:
    """Constant-time comparison of each candidate with the expected token.

    aiohttp hands header bytes that are not UTF-8 over as surrogate escapes; any surrogate is encoded as it is (so it
    never matches the token, which is UTF-8) instead of raising: a garbled key is a 401 like any wrong one.
    """
    want = expected.encode("utf-8")
    ok = False
    for candidate in candidates:
        ok |= hmac.compare_digest(want, candidate.encode("utf-8", "surrogatepass"))
    return ok


def resolve_roots(roots: Iterable[Path | str]) -> tuple[Path, ...]:
    """The library roots with symlinks resolved; each must be an existing folder."""
    out: list[Path] = []
    for root in roots:
        real = Path(os.path.realpath(Path(root).expanduser()))
        if not real.is_dir():
            raise ConfigError(f"library root {root} is not an existing folder: fix --root")
        if real not in out:
            out.append(real)
    return tuple(out)


def inside(path: Path, roots: Sequence[Path]) -> bool:
    """True when ``path`` (already resolved) is one of ``roots`` or below one."""
    text = str(path)
    for root in roots:
        base = str(root)
        if text == base or text.startswith(base.rstrip(os.sep) + os.sep):
            return True
    return False


def admit_path(
    raw: str,
    path_map: PathMap,
    roots: Sequence[Path],
    *,
    require_roots: bool,
    base_dir: Path | None = None,
) -> Path:
    """Map a path from a request/hook and check it resolves (symlinks followed) inside the library roots.

    ``roots`` must come from :func:`resolve_roots`. With ``require_roots`` an empty ``roots`` refuses everything
    (the HTTP service); otherwise no roots means any path (the ``hook`` command run by the user's own tools).
    Relative paths are refused unless ``base_dir`` is given to resolve them against. Returns the mapped path as
    given (its real location is what was checked), raising PathRefusedError with the reason.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise PathRefusedError("empty path")
    if "\x00" in raw or any(ord(c) < 32 for c in raw):
        raise PathRefusedError(f"path {echo(raw, PATH_ECHO)} contains control characters")
    mapped = path_map.apply(raw)
    path = Path(mapped)
    if not path.is_absolute():
        if base_dir is None:
            raise PathRefusedError(
                f"path {echo(raw, PATH_ECHO)} is not absolute (after --path-map: {echo(mapped, PATH_ECHO)})"
            )
        path = base_dir / path
    if not roots:
        if require_roots:
            raise PathRefusedError(
                f"no library roots are configured, so {mapped} is refused: start the service with --root DIR"
            )
        return path
    real = Path(os.path.realpath(path))
    if not inside(real, roots):
        where = f"{mapped}" if str(real) == mapped else f"{mapped} (really {real})"
        raise PathRefusedError(
            f"{where} is outside the library roots ({', '.join(map(str, roots))}): add a --root or a --path-map"
        )
    return path
