"""Outputs are written only to new names or over regular files: a device node, a named pipe, a symlink or a folder
where a subtitle or sidecar would go is never replaced, by any command (issue 19, "Broke" 4: as root,
``sync x.srt reply.json -o /dev/full`` turned /dev/full into a regular file)."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.test_service_cli import COMMAND, clean_env
from tests.test_sync_cli import cli, late_copy, reply_file

#: A character device like /dev/null (major 1, minor 3), made in the test's own folder: writing to it is harmless,
#: and a rename over it is exactly what happened to /dev/full.
NULL_DEVICE = os.makedev(1, 3)


def _device(path: Path) -> Path:
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, NULL_DEVICE)
    except PermissionError:
        pytest.skip("making a device node needs root (CI and Docker run as root)")
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _link(path: Path) -> Path:
    target = path.parent / "elsewhere" / "kept.srt"
    target.parent.mkdir(exist_ok=True)
    target.write_text("the user's own file\n", encoding="utf-8")
    path.symlink_to(target)
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


MAKERS: dict[str, Callable[[Path], Path]] = {"device": _device, "fifo": _fifo, "symlink": _link, "folder": _folder}


def _as_it_was(path: Path, kind: str) -> bool:
    mode = os.lstat(path).st_mode
    if kind == "device":
        return stat.S_ISCHR(mode) and os.lstat(path).st_rdev == NULL_DEVICE
    if kind == "fifo":
        return stat.S_ISFIFO(mode)
    if kind == "symlink":
        return stat.S_ISLNK(mode) and path.read_text(encoding="utf-8") == "the user's own file\n"
    return stat.S_ISDIR(mode) and not list(path.iterdir())


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*.tmp")]


@pytest.mark.parametrize("kind", list(MAKERS))
def test_sync_and_retime_never_replace_a_device_pipe_link_or_folder(tmp_path: Path, kind: str) -> None:
    sub = late_copy(tmp_path / "film.zh.srt")
    reply = reply_file(tmp_path / "reply.json")
    target = MAKERS[kind](tmp_path / "out.srt")
    done = cli("sync", str(sub), str(reply), "-o", str(target))
    assert done.returncode == 2, done.stderr
    assert f"{target} is a" in done.stderr and "outputs replace only regular files" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    again = cli("retime", str(reply), "-o", str(target))
    assert again.returncode != 0 and "outputs replace only regular files" in again.stderr, again.stderr
    assert _as_it_was(target, kind)
    assert _no_temp_files(tmp_path)


def test_sync_in_place_keeps_a_symlinked_subtitle_and_its_target(tmp_path: Path) -> None:
    (tmp_path / "library").mkdir()
    real = late_copy(tmp_path / "library" / "film.zh.srt")
    link = tmp_path / "film.zh.srt"
    link.symlink_to(real)
    before = real.read_bytes()
    done = cli("sync", str(link), str(reply_file(tmp_path / "reply.json")), "--in-place")
    assert done.returncode == 2 and "is a symbolic link" in done.stderr, done.stderr
    assert link.is_symlink() and real.read_bytes() == before
    assert not (tmp_path / "film.zh.orig.srt").exists()


@pytest.mark.parametrize("name", ["out", "out.txt", "out.sub"])
def test_sync_output_needs_a_subtitle_suffix_as_retime_does(tmp_path: Path, name: str) -> None:
    sub = late_copy(tmp_path / "film.zh.srt")
    reply = reply_file(tmp_path / "reply.json")
    done = cli("sync", str(sub), str(reply), "-o", str(tmp_path / name))
    assert done.returncode == 2 and "the suffix must be" in done.stderr, done.stderr
    assert not (tmp_path / name).exists()


def test_transcribe_refuses_a_link_or_pipe_where_its_outputs_go_before_any_audio_is_sent(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    """--overwrite replaces a regular subtitle, never a link (its target kept) nor a pipe named like the sidecar."""
    folder = tmp_path / "media"
    folder.mkdir()
    linked = make_media(folder / "a.mkv", [(300, 600)], 1500)
    piped = make_media(folder / "b.mkv", [(300, 600)], 1500)
    plain = make_media(folder / "c.mkv", [(300, 600)], 1500)
    _link(folder / "a.zh.srt")
    _fifo(folder / "b.funasr.json")
    (folder / "c.zh.srt").write_text("an old subtitle\n", encoding="utf-8")
    done = subprocess.run(
        [*COMMAND, "transcribe", "--overwrite", "--server", funasr_server.url, str(linked), str(piped), str(plain)],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    # (refused before any audio is sent, the two may finish in either order)
    errors = sorted(line for line in done.stderr.splitlines() if line.startswith("error:"))
    assert len(errors) == 2 and "a.zh.srt is a symbolic link" in errors[0] and "is a named pipe" in errors[1], errors
    assert "a.mkv:" in errors[0] and "b.mkv:" in errors[1], errors
    assert _as_it_was(folder / "a.zh.srt", "symlink") and _as_it_was(folder / "b.funasr.json", "fifo")
    assert len(funasr_server.files) == 1, "only c.mkv was sent"
    assert (folder / "c.zh.srt").read_text(encoding="utf-8") != "an old subtitle\n"
    assert _no_temp_files(folder)
