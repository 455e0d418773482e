"""The papercuts a newcomer met in the first hour (issue 20), each as the user meets it: the installed command."""

from __future__ import annotations

from pathlib import Path

from funasr_subs.sync.core import Placement, SyncResult
from tests.funasr_server import FunasrTestServer
from tests.media import make_media
from tests.test_first_hour import BURSTS, cli


def test_our_own_subtitle_beside_the_media_is_no_reason_to_warn_with_output_dir(
    funasr_server: FunasrTestServer, tmp_path: Path
) -> None:
    make_media(tmp_path / "bursts.mp4", bursts=BURSTS, duration_ms=5000)
    url = funasr_server.url
    assert cli("transcribe", "--server", url, "bursts.mp4", cwd=tmp_path).returncode == 0  # bursts.zh.srt beside
    done = cli("transcribe", "--server", url, "--output-dir", "subs", "--format", "ass", "bursts.mp4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "already a subtitle" not in done.stderr, done.stderr
    assert (tmp_path / "subs" / "bursts.zh.ass").is_file()
    # a subtitle of the user's beside it is still worth the warning
    (tmp_path / "bursts.zh.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\n我的字幕\n", encoding="utf-8")
    done = cli("transcribe", "--server", url, "--output-dir", "other", "--format", "ass", "bursts.mp4", cwd=tmp_path)
    assert "bursts.zh.srt next to it is already a subtitle in that language" in done.stderr, done.stderr


def test_sync_lists_no_cue_placed_within_half_a_second_as_least_sure() -> None:
    def placed(doubt_ms: int) -> Placement:
        return Placement(1000, 2000, by_text=False, doubt_ms=doubt_ms)

    result = SyncResult("text", (placed(4), placed(0), placed(2400), placed(499), placed(500)), None, 1.0, 0.0, True)
    assert result.least_sure() == [2, 4]  # 4 ms and 499 ms from the evidence are not in doubt
