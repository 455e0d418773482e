"""Install the test plugin distribution the way pip would, minus pip: package + ``*.dist-info`` in a folder.

``importlib.metadata`` finds distributions on ``sys.path``, so a folder holding a copy of the package and a
``*.dist-info`` with ``METADATA`` and ``entry_points.txt`` (generated from pyproject.toml) is an installed plugin for
this process (``plugins_on_path``) or for a subprocess (put the folder on ``PYTHONPATH``). No network, no build step,
nothing written outside the temporary folder: it works the same on a fresh CI machine.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

from funasr_subs import plugins

HERE = Path(__file__).resolve().parent
PACKAGE = "funasr_subs_testplugin"


def entry_points_txt(project: dict[str, object]) -> str:
    groups = project.get("entry-points", {})
    assert isinstance(groups, dict)
    out: list[str] = []
    for group, entries in groups.items():
        out.append(f"[{group}]")
        out.extend(f"{name} = {value}" for name, value in entries.items())
        out.append("")
    return "\n".join(out)


def install_into(site: Path) -> Path:
    """Write the package and its dist-info into ``site`` (created); returns ``site``."""
    project = tomllib.loads((HERE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    name, version = project["name"], project["version"]
    site.mkdir(parents=True, exist_ok=True)
    shutil.copytree(HERE / PACKAGE, site / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(entry_points_txt(project), encoding="utf-8")
    (info / "top_level.txt").write_text(PACKAGE + "\n", encoding="utf-8")
    return site


@contextlib.contextmanager
def plugins_on_path(site: Path) -> Iterator[Path]:
    """The test plugins installed in ``site`` and on ``sys.path`` for the block; plugin caches reset around it."""
    install_into(site)
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    plugins.reset_plugins()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()
        plugins.reset_plugins()
