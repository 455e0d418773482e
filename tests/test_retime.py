"""``funasr-subs retime``: real replies, sidecars and media in, subtitles out, without a server."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pysubs2
import pytest

from funasr_subs.cli import main
from funasr_subs.errors import BadInputError
from funasr_subs.model import Cue
from funasr_subs.sidecar import Sidecar, read_sidecar
from funasr_subs.writers import digest, render
from tests.funasr_server import FunasrTestServer
from tests.media import make_media

REPLIES = Path(__file__).parent / "data" / "funasr-responses"
REPLY_01 = json.loads((REPLIES / "01_offline_cpp_asr_example_single_sentence.json").read_text(encoding="utf-8"))


def events(path: Path) -> list[tuple[int, int, str]]:
    return [(e.start, e.end, e.plaintext) for e in pysubs2.load(str(path))]


def make_sidecar(folder: Path, media_name: str = "film.mkv", **fields: object) -> Path:
    side = Sidecar(reply=REPLY_01, media_name=media_name, **fields)  # type: ignore[arg-type]
    path = folder / (Path(media_name).stem + ".funasr.json")
    path.write_text(side.to_json(), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "cues"),
    [
        ("01_offline_cpp_asr_example_single_sentence.json", 2),  # one line a cue: 20 characters take two
        ("05_2pass_offline_h5_two_clauses.json", 1),
        ("06_2pass_offline_h5_leading_punctuation_empty_segment.json", 1),
        ("10_2pass_full_session_h5.jsonl", 2),
    ],
)
def test_every_real_reply_with_speech_becomes_subtitles(tmp_path: Path, name: str, cues: int) -> None:
    reply = tmp_path / name
    shutil.copy(REPLIES / name, reply)
    assert main(["retime", str(reply), "--format", "srt,ass,vtt"]) == 0
    stem = reply.name.rsplit(".", 1)[0]
    for fmt in ("srt", "ass", "vtt"):
        assert len(events(tmp_path / f"{stem}.zh.{fmt}")) == cues


def test_real_replies_without_speech_or_times_fail_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "08.json"
    shutil.copy(REPLIES / "08_2pass_final_marker_empty_text.json", marker)
    no_ts = tmp_path / "09.json"
    shutil.copy(REPLIES / "09_offline_cpp_2023_log_issue792_no_timestamp_model.json", no_ts)
    good = tmp_path / "01.json"
    shutil.copy(REPLIES / "01_offline_cpp_asr_example_single_sentence.json", good)
    assert main(["retime", str(marker), str(no_ts), str(good)]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert f"error: {marker}: the reply holds no speech (empty text): nothing to write" in errors
    assert any(e.startswith(f"error: {no_ts}: the server sent text without timestamps") for e in errors)
    assert (tmp_path / "01.zh.srt").exists()  # the others are still processed
    # the one reply with speech also got its sidecar (what retime wrote from it is recorded there)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "01.funasr.json",
        "01.json",
        "01.zh.srt",
        "08.json",
        "09.json",
    ]


def test_session_collects_the_offline_replies_in_order(tmp_path: Path) -> None:
    out = tmp_path / "poem.srt"
    assert main(["retime", str(REPLIES / "10_2pass_full_session_h5.jsonl"), "-o", str(out)]) == 0
    assert [text for _, _, text in events(out)] == ["锄禾日当午 汗滴禾下土", "谁知盘中餐粒粒皆辛苦"]
    assert [start for start, _, _ in events(out)] == [410, 4500]


def test_media_input_uses_its_sidecar_offset_and_recorded_settings(tmp_path: Path) -> None:
    media = tmp_path / "film.mkv"
    media.write_bytes(b"not really a film; retime never reads it")
    make_sidecar(tmp_path, offset_ms=2000, settings={"formats": ["srt", "vtt"], "lang": "en", "server": "ws://x:1"})
    assert main(["retime", str(media)]) == 0
    srt = events(tmp_path / "film.en.srt")
    assert srt[0][0] == 880 + 2000  # the audio started 2 s into the container
    assert (tmp_path / "film.en.vtt").exists() and not (tmp_path / "film.zh.srt").exists()


def test_sidecar_input_with_shift_and_fps(tmp_path: Path) -> None:
    side = make_sidecar(tmp_path, offset_ms=1000)
    assert main(["retime", str(side), "--shift", "-400", "--fps", "25"]) == 0
    (start, end, _), *rest = events(tmp_path / "film.zh.srt")
    assert all(s % 40 == 0 and e % 40 == 0 for s, e, _ in rest)
    assert start % 40 == 0 and end % 40 == 0  # 25 fps: 40 ms frames
    assert abs(start - (880 + 1000 - 400)) <= 20


def test_rewrites_its_own_output_but_never_a_users_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    media = tmp_path / "film.mkv"
    side = make_sidecar(tmp_path)
    assert main(["retime", str(media)]) == 0
    ours = tmp_path / "film.zh.srt"
    first = ours.read_text(encoding="utf-8")
    assert read_sidecar(side).wrote(ours)
    assert main(["retime", str(media), "--max-width", "8", "--max-lines", "3"]) == 0  # ours: replaced freely
    second = ours.read_text(encoding="utf-8")
    assert second != first and len(events(ours)[0][2].splitlines()) == 3
    assert read_sidecar(side).settings["max_width"] == 8.0  # the next retime starts from these settings

    users = tmp_path / "film.zh.ass"
    users.write_text("[Script Info]\n; hand-made\n", encoding="utf-8")
    assert main(["retime", str(media), "--format", "ass"]) == 1
    assert users.read_text(encoding="utf-8") == "[Script Info]\n; hand-made\n"
    err = capsys.readouterr().err
    # one line naming the input and the subtitle in the way, each once
    assert f"error: {media}: film.zh.ass exists and was not written by funasr-subs: use --overwrite" in err
    assert err.count("film.zh.ass") == 1
    assert main(["retime", str(media), "--format", "ass", "--overwrite"]) == 0
    assert events(users)[0][2] == events(ours)[0][2]


def test_output_file_takes_its_format_from_the_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    side = make_sidecar(tmp_path)
    out = tmp_path / "sub" / "custom.vtt"
    out.parent.mkdir()
    assert main(["retime", str(side), "-o", str(out), "--check"]) == 0
    assert out.read_text(encoding="utf-8").startswith("WEBVTT")
    assert "custom.vtt: 2 cues, all within the rules" in capsys.readouterr().out
    assert main(["retime", str(side), "-o", str(tmp_path / "x.txt")]) == 2
    assert main(["retime", str(side), str(side), "-o", str(out)]) == 2


def test_bad_inputs_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    no_side = tmp_path / "lonely.mkv"
    no_side.write_bytes(b"x")
    not_json = tmp_path / "broken.json"
    not_json.write_text("{oops", encoding="utf-8")
    other_json = tmp_path / "package.json"
    other_json.write_text('{"name": "left-pad"}', encoding="utf-8")
    assert main(["retime", str(no_side), str(not_json), str(other_json), str(tmp_path / "gone.mkv")]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert (
        f"error: {no_side}: no sidecar lonely.funasr.json beside it: transcribe it first (funasr-subs transcribe), "
        "or give the --output-dir it was transcribed with" in errors
    )
    assert any(e.startswith(f"error: {not_json}: not valid JSON") for e in errors)
    assert f"error: {other_json}: not a FunASR reply (no text, stamp_sents or timestamp)" in errors
    assert f"error: {tmp_path / 'gone.mkv'}: file not found: check the path" in errors
    assert not list(tmp_path.glob("*.srt"))


def test_what_retime_writes_matches_render(tmp_path: Path) -> None:
    """The bytes on disk are exactly what the writers render, and the sidecar records their digest."""
    side = make_sidecar(tmp_path)
    assert main(["retime", str(side)]) == 0
    text = (tmp_path / "film.zh.srt").read_text(encoding="utf-8")
    assert digest(text) in read_sidecar(side).outputs["film.zh.srt"]
    assert text == render([Cue(880, 2957, ("欢迎大家来体验达摩院",)), Cue(3040, 5695, ("推出的语音识别模型",))], "srt")


def test_retime_after_a_real_transcription(funasr_server: FunasrTestServer, tmp_media_dir: Path) -> None:
    """transcribe (real ffmpeg, real test server, late audio) then retime: same times, new layout, no server."""
    media = make_media(
        tmp_media_dir / "ep 01.mp4", bursts=[(1000, 900), (3500, 1200)], duration_ms=6000, audio_delay_ms=1000
    )
    common = ["--server", funasr_server.url, "--retries", "0"]
    assert main(["transcribe", *common, str(media)]) == 0
    srt = tmp_media_dir / "ep 01.zh.srt"
    before = events(srt)
    requests = len(funasr_server.requests)
    funasr_server.stop()
    assert main(["retime", str(media), "--fps", "25"]) == 0
    after = events(srt)
    assert len(funasr_server.requests) == requests
    assert [text for _, _, text in after] == [text for _, _, text in before]
    for (s0, _, _), (s1, e1, _) in zip(before, after, strict=True):
        assert abs(s1 - s0) <= 20 and s1 % 40 == 0 and e1 % 40 == 0
    assert min(abs(s - 2000) for s, _, _ in after) <= 120  # burst at 1.0 s + 1.0 s audio delay


def test_a_sidecar_read_without_its_reply_says_the_same_about_everything_else(tmp_path: Path) -> None:
    reply = {"text": "你好。", "stamp_sents": [{"text_seg": "你 好", "punc": "。", "ts_list": [[0, 200], [200, 400]]}]}
    side = Sidecar(
        reply=reply,
        offset_ms=-21,
        duration_ms=5000,
        media_name="a.mkv",
        media_size=7,
        media_mtime_ns=9,
        settings={"max_cps": 9},
        outputs={"a.zh.srt": ["d1"]},
    )
    new = tmp_path / "new.funasr.json"
    new.write_text(side.to_json(), encoding="utf-8")
    old = tmp_path / "old.funasr.json"  # as sidecars were written before: the whole file indented
    old.write_text(json.dumps(json.loads(side.to_json()), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    for path in (new, old):
        whole, head = read_sidecar(path), read_sidecar(path, reply=False)
        assert whole.reply == reply and head.reply == {}
        for field in ("offset_ms", "duration_ms", "media_name", "media_size", "media_mtime_ns", "settings", "outputs"):
            assert getattr(head, field) == getattr(whole, field), field
    cut = tmp_path / "cut.funasr.json"  # cut short in the reply: not taken for a good sidecar by either read
    cut.write_text(side.to_json()[:-20], encoding="utf-8")
    for reply_too in (True, False):
        with pytest.raises(BadInputError, match="damaged"):
            read_sidecar(cut, reply=reply_too)


def test_a_reply_read_as_text_is_written_back_as_it_was_and_only_with_that_reply(tmp_path: Path) -> None:
    reply = {"text": "你好。", "stamp_sents": [{"text_seg": "你 好", "punc": "。", "ts_list": [[0, 200], [200, 400]]}]}
    path = tmp_path / "a.funasr.json"
    path.write_text(Sidecar(reply=reply, media_name="a.mkv").to_json(), encoding="utf-8")
    read = read_sidecar(path)
    assert read.reply_text is not None and json.loads(read.reply_text[1]) == reply
    again = Sidecar(**{f: getattr(read, f) for f in ("reply", "media_name", "reply_text")}, outputs={"a.srt": ["x"]})
    assert json.loads(again.to_json())["reply"] == reply
    other = {"text": "再见。", "timestamp": "[[0,300],[300,600]]"}
    swapped = dataclasses.replace(read, reply=other)  # the text read belongs to the old reply: not written
    assert json.loads(swapped.to_json())["reply"] == other
    hand = tmp_path / "hand.funasr.json"  # the reply not last (edited by hand): read, but encoded anew
    hand.write_text('{\n "reply": {"text": "x"},\n "media": {"name": "a.mkv"}\n}\n', encoding="utf-8")
    edited = read_sidecar(hand)
    assert edited.reply_text is None and json.loads(edited.to_json())["reply"] == {"text": "x"}


@pytest.mark.parametrize("shift", ["100000000000000000000", "1e20", "٣", "1_0", "-86400001"])
def test_a_shift_out_of_range_or_not_in_digits_is_refused(tmp_path: Path, shift: str) -> None:
    """Issue 19: ``--shift 1e20``-sized shifts were clamped by pysubs2 (a RuntimeWarning) and written anyway."""
    import subprocess

    from tests.test_hook import COMMAND

    side = make_sidecar(tmp_path)
    done = subprocess.run([*COMMAND, "retime", str(side), f"--shift={shift}"], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1].startswith("funasr-subs retime: error: argument --shift"), done.stderr
    assert "Warning" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "film.zh.srt").exists()


def test_a_shift_past_what_the_format_holds_writes_nothing(tmp_path: Path) -> None:
    import subprocess

    from tests.test_hook import COMMAND

    side = make_sidecar(tmp_path)
    argv = [*COMMAND, "retime", str(side), "--format", "srt,ass", "--shift", "86400000"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert "past the latest time a .ass file holds" in done.stderr and "Warning" not in done.stderr, done.stderr
    assert not (tmp_path / "film.zh.srt").exists() and not (tmp_path / "film.zh.ass").exists()
    assert main(["retime", str(side), "--format", "srt", "--shift", "86400000"]) == 0  # a day is within .srt's
    assert events(tmp_path / "film.zh.srt")[0][0] == 880 + 86_400_000


def test_a_shift_before_the_start_drops_the_words_it_moves_there(tmp_path: Path) -> None:
    """A negative shift clamped every token it moved before 0 to a token at 0 ms: the first minutes' words were
    piled into cues of 1 ms at 00:00:00 (``--shift -260000`` on a 270 s film: 48 such cues, two lines each). The
    words before the start are left out; the rest keep the rules; a shift past every word is one line."""
    import subprocess

    from benchmarks.bench_cues import funasr_like_tokens, reply_for
    from funasr_subs.check import check_cues
    from funasr_subs.cues.settings import CueSettings
    from tests.test_hook import COMMAND

    reply = tmp_path / "talk.json"
    reply.write_text(json.dumps(reply_for(funasr_like_tokens(600)), ensure_ascii=False), encoding="utf-8")
    assert main(["retime", str(reply)]) == 0
    whole = events(tmp_path / "talk.zh.srt")
    half = whole[-1][1] // 2
    assert main(["retime", str(reply), "--shift", str(-half), "--overwrite"]) == 0
    shifted = events(tmp_path / "talk.zh.srt")
    assert 0 < len(shifted) < len(whole) * 3 // 4, len(shifted)
    cues = [Cue(start, end, tuple(text.split("\n"))) for start, end, text in shifted]
    assert not check_cues(cues, CueSettings.for_profile("zh", None), tolerance_ms=10).violations
    shown = "".join(text for _, _, text in shifted).replace(" ", "").replace("\n", "")
    assert "".join(text for _, _, text in whole).replace(" ", "").replace("\n", "").endswith(shown[-200:])
    argv = [*COMMAND, "retime", str(reply), "--overwrite", "--shift", str(-whole[-1][1] - 1000)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and "moves every word before the start" in done.stderr, done.stderr
    assert events(tmp_path / "talk.zh.srt") == shifted  # nothing written


@pytest.mark.parametrize("fps", ["0.5", "0.001", "9.99"])
def test_frames_no_video_has_are_refused(tmp_path: Path, fps: str) -> None:
    """Frames of seconds pushed every cue further from its speech (a cue and a gap take two frames at least): at
    ``--fps 0.5`` a 270 s film's last cue came at 6:46, at ``0.001`` the cues ran over 56 hours. One line, nothing
    written; the slowest rate allowed keeps every cue within a frame of where it is without frames."""
    import subprocess

    from benchmarks.bench_cues import funasr_like_tokens, reply_for
    from tests.test_hook import COMMAND

    reply = tmp_path / "talk.json"
    reply.write_text(json.dumps(reply_for(funasr_like_tokens(600)), ensure_ascii=False), encoding="utf-8")
    done = subprocess.run([*COMMAND, "retime", str(reply), "--fps", fps], capture_output=True, text=True, timeout=60)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0 and len(lines) == 1 and "fps" in lines[0] and "10" in lines[0], done.stderr
    assert not (tmp_path / "talk.zh.srt").exists()
    assert main(["retime", str(reply)]) == 0
    plain = events(tmp_path / "talk.zh.srt")
    assert main(["retime", str(reply), "--fps", "10", "--overwrite"]) == 0
    framed = events(tmp_path / "talk.zh.srt")
    assert len(framed) == len(plain)
    assert max(abs(a[0] - b[0]) for a, b in zip(framed, plain, strict=True)) <= 100
