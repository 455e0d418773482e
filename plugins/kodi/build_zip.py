"""Build the Kodi add-on zip for "Install from zip file": ``python plugins/kodi/build_zip.py [--out DIR]``.

Writes ``<out>/service.subtitles.funasr-<version>.zip`` (version from addon.xml) whose single top-level folder is
the add-on id, as Kodi requires. The zip is reproducible: sorted entries, fixed timestamps, no caches.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ADDON_DIR = HERE / "service.subtitles.funasr"
DEFAULT_OUT = HERE.parent.parent / "dist"
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".orig", ".rej", "~")
_EPOCH = (1980, 1, 1, 0, 0, 0)


def addon_identity(addon_dir: Path = ADDON_DIR) -> tuple[str, str]:
    """``(id, version)`` read from addon.xml."""
    root = ET.parse(addon_dir / "addon.xml").getroot()
    addon_id, version = root.get("id"), root.get("version")
    if root.tag != "addon" or not addon_id or not version:
        raise ValueError(f"{addon_dir / 'addon.xml'}: not a Kodi addon.xml (needs <addon id=... version=...>)")
    return addon_id, version


def addon_files(addon_dir: Path = ADDON_DIR) -> Iterator[Path]:
    """Every file that belongs in the zip, sorted, relative to ``addon_dir``."""
    for dirpath, dirnames, filenames in os.walk(addon_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith(_SKIP_SUFFIXES):
                continue
            yield (Path(dirpath) / name).relative_to(addon_dir)


def build(out_dir: Path = DEFAULT_OUT, addon_dir: Path = ADDON_DIR) -> Path:
    """Write the zip (atomically) and return its path."""
    addon_id, version = addon_identity(addon_dir)
    if addon_dir.name != addon_id:
        raise ValueError(f"{addon_dir}: the folder name must equal the add-on id {addon_id!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{addon_id}-{version}.zip"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=out_dir)
    os.close(fd)
    try:
        files = list(addon_files(addon_dir))
        folders = {Path(addon_id)} | {Path(addon_id, *rel.parts[:i]) for rel in files for i in range(1, len(rel.parts))}
        entries = sorted([f"{d.as_posix()}/" for d in folders] + [f"{addon_id}/{rel.as_posix()}" for rel in files])
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in entries:
                info = zipfile.ZipInfo(name, date_time=_EPOCH)
                if name.endswith("/"):
                    info.external_attr = (0o40755 << 16) | 0x10  # a folder (Unix mode + MS-DOS directory flag)
                    zf.writestr(info, b"")
                    continue
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, (addon_dir / name.split("/", 1)[1]).read_bytes())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the zip is meant to be copied and shared
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Kodi add-on zip (Add-ons → Install from zip file).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        path = build(args.out)
    except (OSError, ValueError, ET.ParseError) as exc:
        print(f"build_zip: error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
