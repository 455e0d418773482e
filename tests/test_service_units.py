"""Pure pieces of the service: path maps, tokens, root checks, config, outputs (uploads: test_service_uploads)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from funasr_subs.config import Settings
from funasr_subs.errors import ConfigError
from funasr_subs.model import Cue
from funasr_subs.service import asr
from funasr_subs.service.config import load_service_config
from funasr_subs.service.pathmap import PathMap, parse_mapping
from funasr_subs.service.security import (
    PathRefusedError,
    admit_path,
    check_token_setting,
    is_local,
    presented_tokens,
    resolve_roots,
    token_matches,
)


# --- path maps --------------------------------------------------------------------------------------------------
def test_longest_prefix_wins_and_prefixes_end_at_a_separator() -> None:
    pm = PathMap.parse(["/data=/mnt/all", "/data/tv=/mnt/tv", "/=/root-of-all"])
    assert pm.apply("/data/tv/Show/e.mkv") == "/mnt/tv/Show/e.mkv"
    assert pm.apply("/data/movies/f.mkv") == "/mnt/all/movies/f.mkv"
    assert pm.apply("/database/x.mkv") == "/root-of-all/database/x.mkv"
    assert PathMap.parse(["/data=/mnt"]).apply("/database/x.mkv") == "/database/x.mkv"
    assert PathMap.parse(["/data/=/mnt/"]).apply("/data/x.mkv") == "/mnt/x.mkv"


def test_windows_sources_match_case_insensitively_and_reverse_back() -> None:
    pm = PathMap.parse([r"D:\Media\TV=/mnt/tv"])
    assert pm.apply(r"d:\media\tv\Show\S01E01.mkv") == "/mnt/tv/Show/S01E01.mkv"
    assert pm.reverse("/mnt/tv/Show/S01E01.mkv") == r"D:\Media\TV\Show\S01E01.mkv"
    assert PathMap.parse(["/data/tv=/mnt/tv"]).reverse("/mnt/tv/a.mkv") == "/data/tv/a.mkv"


@pytest.mark.parametrize("bad", ["/data", "=/mnt", "/data=", "/data=relative/path"])
def test_malformed_mappings_say_how(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"FROM=TO|absolute"):
        parse_mapping(bad)


# --- tokens ---------------------------------------------------------------------------------------------------
def test_every_token_form_is_found() -> None:
    basic = base64.b64encode(b"bazarr:tok-basic").decode()
    assert presented_tokens({"X-Api-Key": "tok-a"}, {}) == ["tok-a"]
    assert presented_tokens({"Authorization": "Bearer tok-b"}, {}) == ["tok-b"]
    assert presented_tokens({"Authorization": f"Basic {basic}"}, {}) == ["tok-basic", "bazarr"]
    # not base64: a credential all the same (a wrong one: 401 even on the public endpoints), not none
    assert presented_tokens({"Authorization": "Basic !!notbase64"}, {}) == ["!!notbase64"]
    assert presented_tokens({}, {"token": ["tok-q"]}) == ["tok-q"]
    assert token_matches("tok-b", ["nope", "tok-b"]) and not token_matches("tok-b", ["tok-", "tok-bb", ""])


def test_bind_rules() -> None:
    assert is_local("127.0.0.1") and is_local("::1") and is_local("[::1]") and is_local("localhost")
    assert is_local("127.0.0.2") and is_local("127.255.0.9")  # every loopback address stays on this machine
    assert not is_local("0.0.0.0") and not is_local("::") and not is_local("192.168.1.5") and not is_local("nas")
    check_token_setting("127.0.0.1", None)
    check_token_setting("0.0.0.0", "x" * 16)
    with pytest.raises(ConfigError, match="token is required"):
        check_token_setting("0.0.0.0", None)


# --- roots ----------------------------------------------------------------------------------------------------
def test_admit_path_follows_symlinks_and_refuses_escapes(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    (lib / "show").mkdir(parents=True)
    (lib / "show" / "e.mkv").write_bytes(b"x")
    (tmp_path / "libx").mkdir()
    (tmp_path / "libx" / "f.mkv").write_bytes(b"x")  # a sibling whose name starts like the root
    (lib / "out").symlink_to(tmp_path / "libx")
    roots = resolve_roots([lib])
    pm = PathMap()
    assert admit_path(str(lib / "show" / "e.mkv"), pm, roots, require_roots=True) == lib / "show" / "e.mkv"
    for bad in (str(tmp_path / "libx" / "f.mkv"), str(lib / ".." / "libx" / "f.mkv"), str(lib / "out" / "f.mkv")):
        with pytest.raises(PathRefusedError, match="outside"):
            admit_path(bad, pm, roots, require_roots=True)
    with pytest.raises(PathRefusedError, match="not absolute"):
        admit_path("show/e.mkv", pm, roots, require_roots=True)
    assert admit_path("show/e.mkv", pm, roots, require_roots=False, base_dir=lib) == lib / "show" / "e.mkv"
    with pytest.raises(PathRefusedError, match="--root"):
        admit_path(str(lib / "show" / "e.mkv"), pm, (), require_roots=True)
    with pytest.raises(ConfigError, match="not an existing folder"):
        resolve_roots([tmp_path / "missing"])


# --- config ---------------------------------------------------------------------------------------------------
def test_serve_table_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[serve]\nport = 9100\nroots = ["/a", "/b"]\npath_map = {"/data" = "/mnt"}\nmax-upload-mb = 64\n'
        '[watch]\nstate_dir = "/var/lib/fs"\n',
        encoding="utf-8",
    )
    env = {"FUNASR_SUBS_SERVE_PORT": "9200", "FUNASR_SUBS_SERVE_TOKEN": "t" * 20}
    got = load_service_config(Settings(), {"roots": [Path("/c")], "host": None}, config_path=config, environ=env)
    assert got.port == 9200 and got.token == "t" * 20 and got.max_upload_mb == 64
    assert got.roots == (Path("/c"),) and got.path_map.apply("/data/x") == "/mnt/x"
    assert got.state_dir == Path("/var/lib/fs")
    config.write_text("[serve]\nprot = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown \\[serve\\] setting 'prot'"):
        load_service_config(Settings(), config_path=config, environ={})
    with pytest.raises(ConfigError, match="http"):
        load_service_config(Settings(), {"plex_url": "plex:32400"}, environ={})


# --- the whisper contract ---------------------------------------------------------------------------------------
def test_request_defaults_and_validation() -> None:
    assert asr.parse_request({}) == asr.AsrRequest("transcribe", None, "txt", True, None)
    got = asr.parse_request({"encode": ["false"], "output": ["SRT"], "language": ["zh"], "video_file": ["/tv/a.mkv"]})
    assert (got.encode, got.output, got.language, got.video_file) == (False, "srt", "zh", "/tv/a.mkv")
    for bad in ({"task": ["translate"]}, {"output": ["docx"]}, {"encode": ["perhaps"]}):
        with pytest.raises(asr.AsrRequestError):
            asr.parse_request(bad)


def test_outputs_for_english_join_lines_with_spaces() -> None:
    cues = [Cue(1000, 2500, ("Hello there,", "general.")), Cue(3000, 4000, ("Bye.",))]
    s = Settings(profile="en", lang="en")
    assert asr.render_output(cues, "txt", s)[0] == b"Hello there, general.\nBye.\n"
    assert asr.whisper_json(cues, s)["text"] == "Hello there, general. Bye."
    assert asr.detect_language_reply(s)["detected_language"] == "english"
    assert asr.render_output([], "vtt", s)[0] == b"WEBVTT\n\n"
    assert asr.render_output(cues, "tsv", s)[0].splitlines()[1] == b"1000\t2500\tHello there, general."
    zh = Settings(lang="zh-CN")
    assert asr.model_language(zh) == ("zh", "chinese")
