"""Settings: TOML file, then FUNASR_SUBS_* environment, then flags; typed values and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from funasr_subs.config import Settings, load_settings
from funasr_subs.errors import ConfigError
from funasr_subs.hotwords import hotwords_wire, load_hotwords_file, parse_hotwords


def test_layers_flags_over_env_over_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('send = "mp4"\njobs = 3\nlang = "ja"\nmax_width = 20\n[watch]\nsettle = 9\n', encoding="utf-8")
    env = {"FUNASR_SUBS_JOBS": "4", "FUNASR_SUBS_ITN": "false", "FUNASR_SUBS_FORMATS": "srt,ass"}
    s = load_settings({"lang": "ko", "jobs": None}, config_path=config, environ=env)
    assert (s.send, s.jobs, s.lang, s.itn, s.formats) == ("mp4", 4, "ko", False, ("srt", "ass"))
    assert s.cue_settings().max_width == 20.0 and s.cue_settings().max_lines == 1


def test_env_names_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("overwrite = true\n", encoding="utf-8")
    assert load_settings({}, environ={"FUNASR_SUBS_CONFIG": str(config)}).overwrite is True


def test_missing_default_config_is_fine_but_a_named_one_is_not(tmp_path: Path) -> None:
    assert load_settings({}, environ={"XDG_CONFIG_HOME": str(tmp_path)}) == Settings()
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({}, config_path=tmp_path / "nope.toml", environ={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jobs = 'many'\n", "bad value for 'jobs'"),
        ("send = 'wav'\n", "expected one of pcm, mp4"),
        ("itn = 1\n", "expected true or false"),
        ("formats = ['srt', 'docx']\n", "unknown subtitle format"),
        ("server = 'ftp://x'\n", "must start with ws:// or wss://"),
        ("profile = 'fr'\n", "expected one of zh, en"),
        ("this is = not toml\n", "not valid TOML"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_settings({}, config_path=config, environ={})


def test_errors_name_the_config_file_or_the_variable_and_what_to_do(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('sendd = "pcm"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as typo:
        load_settings({}, config_path=config, environ={})
    assert str(typo.value) == f"config file {config}: unknown setting 'sendd': did you mean 'send'?"
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as env:
        load_settings({}, config_path=empty, environ={"FUNASR_SUBS_JOBS": "many"})
    assert str(env.value).startswith("environment variable FUNASR_SUBS_JOBS: bad value for 'jobs': 'many'")


def test_hotwords_in_config_as_a_table(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[hotwords]\n"达摩院" = 20\n', encoding="utf-8")
    assert dict(load_settings({}, config_path=config, environ={}).hotwords) == {"达摩院": 20}


def test_hotwords_file_format_and_errors(tmp_path: Path) -> None:
    assert parse_hotwords("\ufeff# comment\n达摩院 20\n\nNew York 15\n阿里\t7\n", "x") == {
        "达摩院": 20,
        "New York": 15,
        "阿里": 7,
    }
    with pytest.raises(ConfigError, match=r"x, line 2: weight '2\.5'"):
        parse_hotwords("好 1\n达摩院 2.5\n", "x")
    with pytest.raises(ConfigError, match="line 1"):
        parse_hotwords("20\n", "x")
    with pytest.raises(ConfigError, match="does not exist"):
        load_hotwords_file(tmp_path / "missing.txt")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_hotwords_file(binary)


def test_wire_form_is_a_json_string_with_int_weights() -> None:
    assert hotwords_wire({"达摩院": 20, "x": 3}) == '{"达摩院": 20, "x": 3}'
