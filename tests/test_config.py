"""Config: packaged defaults read under a local config.ini, typed values, errors that name the place."""
from __future__ import annotations

import pytest

from tinytroupe import utils
from tinytroupe.config import CONFIG_KEYS, PACKAGED_CONFIG, openai_defaults, read_config
from tinytroupe.errors import ConfigError


def write_config(directory, body: str):
    path = directory / "config.ini"
    path.write_text("[OpenAI]\n" + body, encoding="utf-8")
    return path


def test_packaged_defaults_have_every_key_with_the_right_type(tmp_path):
    values = openai_defaults(read_config(tmp_path))
    assert len(values) == len(CONFIG_KEYS)
    assert isinstance(values["top_p"], float) and isinstance(values["max_attempts"], int)
    assert values["cache_api_calls"] is False and values["base_url"] is None


def test_local_config_overrides_key_by_key(tmp_path):
    write_config(tmp_path, "TOP_P=0.9\nMODEL=gpt-4.1\nCACHE_API_CALLS=yes\nBASE_URL=http://127.0.0.1:9/v1\n")
    values = openai_defaults(utils.read_config_file(use_cache=False, directory=tmp_path))
    assert values["top_p"] == 0.9 and values["model"] == "gpt-4.1" and values["cache_api_calls"] is True
    assert values["base_url"] == "http://127.0.0.1:9/v1"
    packaged = openai_defaults(read_config(PACKAGED_CONFIG.parent))
    assert values["max_tokens"] == packaged["max_tokens"]  # untouched keys keep the packaged value


@pytest.mark.parametrize(
    "line, key",
    [
        ("MAX_TOKENS=abc", "MAX_TOKENS"),
        ("MAX_ATTEMPTS=2.5", "MAX_ATTEMPTS"),
        ("MAX_ATTEMPTS=0", "MAX_ATTEMPTS"),
        ("TOP_P=high", "TOP_P"),
        ("CACHE_API_CALLS=maybe", "CACHE_API_CALLS"),
        ("API_TYPE=anthropic", "API_TYPE"),
        ("EXPONENTIAL_BACKOFF_FACTOR=0.5", "EXPONENTIAL_BACKOFF_FACTOR"),
    ],
)
def test_wrong_types_name_file_section_key_and_value(tmp_path, line, key):
    path = write_config(tmp_path, line + "\n")
    value = line.split("=", 1)[1]
    with pytest.raises(ConfigError) as error:
        openai_defaults(read_config(tmp_path))
    message = str(error.value)
    assert str(path) in message and "[OpenAI]" in message and key in message and repr(value) in message


def test_empty_sampling_values_mean_not_sent(tmp_path):
    write_config(tmp_path, "TEMPERATURE=\nMAX_TOKENS=\n")
    values = openai_defaults(read_config(tmp_path))
    assert values["temperature"] is None and values["max_tokens"] is None


def test_unparseable_file_is_named(tmp_path):
    (tmp_path / "config.ini").write_text("no section header\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config\.ini: cannot parse"):
        read_config(tmp_path)


def test_unknown_keys_are_warned_about(tmp_path, caplog):
    write_config(tmp_path, "MODLE=gpt-4o\n")
    read_config(tmp_path)
    assert "MODLE is not a known key" in caplog.text


def test_read_config_file_caches_per_directory(tmp_path):
    first = utils.read_config_file(directory=tmp_path)
    assert utils.read_config_file(directory=tmp_path) is first
    assert utils.read_config_file(use_cache=False, directory=tmp_path) is not first
