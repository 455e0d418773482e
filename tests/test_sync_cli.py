"""``funasr-subs sync`` as a user (or Bazarr) runs it: the installed command on real files; the real test server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pysubs2
import pytest

from funasr_subs.commands.check import load_subtitles
from funasr_subs.model import Cue
from funasr_subs.sidecar import Sidecar, read_sidecar
from tests.fake_recognition import sentences_for
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.sync_data import film, reply_of, share_within, speech_of, speech_tokens, translation, write_subtitle

#: One line per cue, no punctuation, Latin words, no gaps between cues.
ZH = film("mixed", gaps="none", punctuation=False)
LATE_MS = 12_345


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("funasr-subs", path=_env(cwd)["PATH"])  # this interpreter's script first
    argv = [exe] if exe else [sys.executable, "-m", "funasr_subs"]
    return subprocess.run([*argv, *args], capture_output=True, text=True, env=_env(cwd), timeout=120, check=False)


def _env(cwd: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNASR_SUBS_")}
    env["XDG_CONFIG_HOME"] = str(cwd or Path.cwd()) + "/no-config-here"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def late_copy(target: Path, cues: list[Cue] = ZH, late_ms: int = LATE_MS) -> Path:
    """A film's subtitle, every cue ``late_ms`` late (as a badly timed download), in the format of the suffix."""
    return write_subtitle(target, cues, late_ms=late_ms)


def reply_file(target: Path, cues: list[Cue] = ZH, seed: int = 1) -> Path:
    target.write_text(json.dumps(reply_of(speech_tokens(speech_of(cues), seed=seed))), encoding="utf-8")
    return target


def starts(path: Path) -> list[int]:
    return [e.start for e in pysubs2.load(str(path)) if not e.is_comment]


def texts(path: Path) -> list[str]:
    return [e.text for e in pysubs2.load(str(path)) if not e.is_comment]


def close_to_truth(path: Path, cues: list[Cue] = ZH) -> float:
    truth = [c.start_ms for c in cues]
    return share_within([abs(a - b) for a, b in zip(starts(path), truth, strict=True)], 100)


def test_default_output_and_report(tmp_path: Path) -> None:
    sub = late_copy(tmp_path / "film.zh.srt")
    original = sub.read_bytes()
    done = cli("sync", str(sub), str(reply_file(tmp_path / "reply.json")), "--check")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "film.zh.synced.srt"
    assert close_to_truth(out) >= 0.97
    assert texts(out) == texts(sub) and sub.read_bytes() == original
    report = done.stdout
    assert f"{sub}: synced by text" in report
    assert "offset -12.3" in report and "frame-rate ratio 1 (no frame-rate change)" in report
    placed = re.search(rf"placed by their own text: (\d+) of {len(ZH)} cues", report)
    assert placed and int(placed[1]) >= 0.9 * len(ZH)
    assert f"wrote {out}" in report
    assert "cues," in report  # the rule check's summary line


def test_in_place_twice_keeps_the_first_original(tmp_path: Path) -> None:
    sub = late_copy(tmp_path / "film.zh.srt")
    original = sub.read_bytes()
    reply = reply_file(tmp_path / "reply.json")
    assert cli("sync", str(sub), str(reply), "--in-place").returncode == 0
    backup = tmp_path / "film.zh.orig.srt"
    assert backup.read_bytes() == original and close_to_truth(sub) >= 0.97
    first = starts(sub)
    done = cli("sync", str(sub), str(reply), "--in-place")
    assert done.returncode == 0, done.stderr
    assert backup.read_bytes() == original  # not the once-synced file
    assert max(abs(a - b) for a, b in zip(starts(sub), first, strict=True)) <= 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.zh.orig.srt", "film.zh.srt", "reply.json"]


@pytest.mark.parametrize("flags", [["--check", "--fps", "0"], ["--check", "--max-width", "0"], ["--max-lines", "0"]])
def test_a_bad_cue_setting_is_refused_before_anything_is_written(tmp_path: Path, flags: list[str]) -> None:
    """``--check`` read its cue settings after the synced subtitle was written: ``--fps 0`` gave exit 2 and an error,
    with the file (or, ``--in-place``, the replaced subtitle) already there. Without --check a bad one went unseen."""
    sub = late_copy(tmp_path / "film.zh.srt")
    original = sub.read_bytes()
    reply = reply_file(tmp_path / "reply.json")
    for target in (["-o", str(tmp_path / "out.srt")], ["--in-place"]):
        done = cli("sync", str(sub), str(reply), *target, *flags)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1 and flags[-2] in lines[0], done.stderr
        assert sub.read_bytes() == original
        assert sorted(p.name for p in tmp_path.iterdir()) == ["film.zh.srt", "reply.json"]


def test_bad_subtitle_and_untrusted_alignment_write_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "broken.srt"
    bad.write_bytes(b"\x00\x01\x02 not a subtitle \xff\xfe\x00")
    reply = reply_file(tmp_path / "reply.json")
    done = cli("sync", str(bad), str(reply), "--in-place")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "subtitle" in lines[0]
    other = late_copy(tmp_path / "other.en.srt", translation(film("talk", seed=5)))  # another film's translation
    done = cli("sync", str(other), str(reply), "--in-place")
    assert done.returncode == 1
    assert f"error: {other}: no alignment it can trust" in done.stderr and "nothing written" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.srt", "other.en.srt", "reply.json"]


def test_output_suffix_and_missing_source_are_refused(tmp_path: Path) -> None:
    sub = late_copy(tmp_path / "film.zh.srt")
    reply = reply_file(tmp_path / "reply.json")
    done = cli("sync", str(sub), str(reply), "-o", str(tmp_path / "film.txt.docx"))
    assert done.returncode == 2 and "the suffix must be .srt, .ass, .ssa or .vtt" in done.stderr
    done = cli("sync", str(sub), str(tmp_path / "gone.mkv"))
    assert done.returncode == 2 and f"{tmp_path / 'gone.mkv'}: file not found" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.zh.srt", "reply.json"]


def test_ass_styles_tags_and_positions_survive(tmp_path: Path) -> None:
    (tmp_path / "made").mkdir()
    subs, _ = load_subtitles(late_copy(tmp_path / "made" / "film.srt", late_ms=0))
    subs.styles["Sign"] = pysubs2.SSAStyle(fontname="Kai", fontsize=40, alignment=pysubs2.Alignment.TOP_LEFT)
    for k, event in enumerate(subs.events):
        if k % 3 == 0:
            event.text = r"{\pos(200,80)\i1}" + event.text
            event.style = "Sign"
    subs.shift(ms=-4_000 + 5_000)
    sub = tmp_path / "film.ass"
    sub.write_text(subs.to_string("ass"), encoding="utf-8")
    out = tmp_path / "out" / "fixed.ass"
    out.parent.mkdir()
    done = cli("sync", str(sub), str(reply_file(tmp_path / "reply.json")), "-o", str(out))
    assert done.returncode == 0, done.stderr
    before, after = pysubs2.load(str(sub)), pysubs2.load(str(out))
    assert after.styles["Sign"].fontname == "Kai" and after.styles["Sign"].alignment == pysubs2.Alignment.TOP_LEFT
    assert [(e.text, e.style) for e in after] == [(e.text, e.style) for e in before]
    assert close_to_truth(out) >= 0.97


def _bazarr_quote(value: str) -> str:
    """How Bazarr puts a value into the command: wrapped in double quotes, with backslash, double quote and control
    characters escaped (quotes around the placeholder in the template are replaced too)."""
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return '"' + "".join(escapes.get(ch, ch) for ch in value) + '"'


def _bazarr_command(template: str, **values: str) -> str:
    for key, value in values.items():
        template = re.sub(r"['\"]?\{\{" + key + r"\}\}['\"]?", lambda _m, v=value: _bazarr_quote(v), template)
    return template


def test_bazarr_post_processing_command(tmp_path: Path) -> None:
    """The documented line, filled in the way Bazarr does and run through a shell, on names with spaces and quotes."""
    folder = tmp_path / "TV Shows" / "Bob's Show"
    folder.mkdir(parents=True)
    media = folder / "Bob's Show S01E01.mkv"
    media.write_bytes(b"the sidecar below matches this file's size and mtime, so no server is needed")
    st = media.stat()
    reply = reply_of(speech_tokens(speech_of(ZH), seed=2))
    sidecar = Sidecar(reply=reply, media_name=media.name, media_size=st.st_size, media_mtime_ns=st.st_mtime_ns)
    (folder / "Bob's Show S01E01.funasr.json").write_text(sidecar.to_json(), encoding="utf-8")
    sub = late_copy(folder / "Bob's Show S01E01.zh.srt")
    command = _bazarr_command(
        'funasr-subs sync "{{subtitles}}" "{{episode}}" --in-place', subtitles=str(sub), episode=str(media)
    )
    done = subprocess.run(command, shell=True, capture_output=True, text=True, env=_env(tmp_path), timeout=120)
    assert done.returncode == 0, (command, done.stderr)
    assert close_to_truth(sub) >= 0.97
    assert (folder / "Bob's Show S01E01.zh.orig.srt").exists()


def test_media_beside_the_subtitle_is_found(tmp_path: Path) -> None:
    media = tmp_path / "film.mp4"
    media.write_bytes(b"x" * 10)
    st = media.stat()
    sidecar = Sidecar(
        reply=reply_of(speech_tokens(speech_of(ZH), seed=3)),
        media_name=media.name,
        media_size=st.st_size,
        media_mtime_ns=st.st_mtime_ns,
    )
    (tmp_path / "film.funasr.json").write_text(sidecar.to_json(), encoding="utf-8")
    sub = late_copy(tmp_path / "film.zh.forced.srt")
    done = cli("sync", str(sub))
    assert done.returncode == 0, done.stderr
    assert close_to_truth(tmp_path / "film.zh.forced.synced.srt") >= 0.97
    lonely = late_copy(tmp_path / "lonely.zh.srt")
    done = cli("sync", str(lonely))
    assert done.returncode == 2 and f"{lonely}: no media with the same name beside it" in done.stderr


def test_media_recognised_through_ffmpeg_and_the_server(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    """Media without a sidecar: real ffmpeg, the real test server; the sidecar is saved, the second sync needs no
    server, and the user's subtitle file beside the media is never replaced."""
    bursts = [(1000, 1100), (4000, 1500), (7000, 1300), (10_000, 1700), (13_500, 1100)]
    media = make_media(tmp_media_dir / "ep 01.mkv", bursts=bursts, duration_ms=16_000)
    said = sentences_for([(s, s + d) for s, d in bursts])  # what the test server will recognise
    late = 2_500
    cues = pysubs2.SSAFile()
    for seg, (start, dur) in zip(said, bursts, strict=True):
        cues.append(pysubs2.SSAEvent(start=start + late, end=start + dur + late, text="".join(seg.tokens)))
    sub = tmp_media_dir / "ep 01.zh.srt"
    sub.write_text(cues.to_string("srt"), encoding="utf-8")
    done = cli("sync", str(sub), str(media), "--server", funasr_server.url, "--retries", "0")
    assert done.returncode == 0, done.stderr
    out = tmp_media_dir / "ep 01.zh.synced.srt"
    assert [abs(s - b[0]) <= 100 for s, b in zip(starts(out), bursts, strict=True)] == [True] * len(bursts)
    side = read_sidecar(tmp_media_dir / "ep 01.funasr.json")
    assert side.matches(media) and len(funasr_server.requests) == 1
    assert cli("sync", str(sub), str(media), "--server", funasr_server.url, "-o", str(out)).returncode == 0
    assert len(funasr_server.requests) == 1  # the current sidecar is used
    os.utime(media, ns=(side.media_mtime_ns + 10**9, side.media_mtime_ns + 10**9))  # the media changed since
    assert cli("sync", str(sub), str(media), "--server", funasr_server.url, "-o", str(out)).returncode == 0
    assert len(funasr_server.requests) == 2 and read_sidecar(tmp_media_dir / "ep 01.funasr.json").matches(media)
    assert sorted(p.name for p in tmp_media_dir.iterdir()) == [
        "ep 01.funasr.json",
        "ep 01.mkv",
        "ep 01.zh.srt",
        "ep 01.zh.synced.srt",
    ]
    funasr_server.stop()
    done = cli("sync", str(sub), "-o", str(tmp_media_dir / "again.srt"))  # the media found by name, its sidecar used
    assert done.returncode == 0, done.stderr
    assert starts(tmp_media_dir / "again.srt") == starts(out)


@pytest.mark.parametrize("suffix", [".vtt"])
def test_traditional_webvtt(tmp_path: Path, suffix: str) -> None:
    talk = film("news", seed=4, script="tw", labels=True)  # speaker labels and sound tags; Simplified speech
    sub = late_copy(tmp_path / f"talk.zh-TW{suffix}", talk, late_ms=-0)
    subs = pysubs2.load(str(sub))
    subs.transform_framerate(24000 / 1001, 25)
    sub.write_text(subs.to_string("vtt"), encoding="utf-8")
    done = cli("sync", str(sub), str(reply_file(tmp_path / "r.json", talk)), "-o", str(tmp_path / "out.vtt"))
    assert done.returncode == 0, done.stderr
    assert "frame-rate ratio 1.04271" in done.stdout
    assert close_to_truth(tmp_path / "out.vtt", talk) >= 0.97
