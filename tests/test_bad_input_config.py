"""Whatever a local config.ini holds, the library gets typed values or one ConfigError naming the
file, the key and what to set it to."""
from __future__ import annotations

import configparser
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tinytroupe import openai_utils
from tinytroupe.config import API_TYPES, CONFIG_KEYS, openai_defaults, read_config
from tinytroupe.errors import ConfigError

# What each key must come out as when it is accepted.
ACCEPTED = {
    "api_type": lambda v: v in API_TYPES,
    "azure_api_version": lambda v: isinstance(v, str),
    "model": lambda v: isinstance(v, str),
    "max_tokens": lambda v: v is None or (isinstance(v, int) and v >= 1),
    "temperature": lambda v: v is None or (isinstance(v, float) and math.isfinite(v)),
    "top_p": lambda v: v is None or (isinstance(v, float) and math.isfinite(v)),
    "frequency_penalty": lambda v: v is None or (isinstance(v, float) and math.isfinite(v)),
    "presence_penalty": lambda v: v is None or (isinstance(v, float) and math.isfinite(v)),
    "timeout": lambda v: isinstance(v, float) and math.isfinite(v) and v >= 0,
    "max_attempts": lambda v: isinstance(v, int) and v >= 1,
    "waiting_time": lambda v: isinstance(v, float) and math.isfinite(v) and v >= 0,
    "exponential_backoff_factor": lambda v: isinstance(v, float) and math.isfinite(v) and v >= 1,
    "embedding_model": lambda v: isinstance(v, str),
    "cache_api_calls": lambda v: isinstance(v, bool),
    "cache_file_name": lambda v: isinstance(v, str),
    "base_url": lambda v: v is None or isinstance(v, str),
}
values = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=20),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "-1", "0", "0.5", "1", "2", "1_000", "0x10", "True", "no", "azure", "OpenAI", " 3 ",
                     "", "%(x)s", "١٢", "1" * 5000]),
)


def config_in(folder: Path, text: str | bytes) -> Path:
    path = folder / "config.ini"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def typed_or_error(folder: Path, path: Path) -> dict | ConfigError:
    try:
        result = openai_defaults(read_config(folder))
    except ConfigError as error:
        assert str(path) in str(error), error
        return error
    assert set(result) == set(ACCEPTED)
    for name, check in ACCEPTED.items():
        assert check(result[name]), (name, result[name])
    return result


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(CONFIG_KEYS), value=values)
@example(key="TEMPERATURE", value="nan")
@example(key="TIMEOUT", value="inf")
@example(key="MAX_TOKENS", value="1" * 5000)
@example(key="API_TYPE", value="bedrock")
def test_any_value_of_any_key_is_typed_or_names_file_key_and_remedy(tmp_path, key, value):
    path = config_in(tmp_path, f"[OpenAI]\n{key}={value}\n")
    outcome = typed_or_error(tmp_path, path)
    if isinstance(outcome, ConfigError):
        message = str(outcome)
        assert f"[OpenAI] {key} = {value.strip()!r}" in message or f"[OpenAI] {key} = {value!r}" in message, message
        assert "is not valid" in message and "; set it to " in message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(bytes))
@example(text=b"[OpenAI]\nMODEL=a\nMODEL=b\n")
@example(text="[OpenAI]\n[OpenAI]\n")
@example(text=b"[OpenAI]\nMODEL=\xe9t\xe9\n")
@example(text="MODEL=gpt-4o\n")
@example(text="[OpenAI]\n  indented=1\n")
def test_any_file_content_is_read_or_named(tmp_path, text):
    path = config_in(tmp_path, text)
    outcome = typed_or_error(tmp_path, path)
    if isinstance(outcome, ConfigError):
        assert "set it to" in str(outcome) or "fix it" in str(outcome)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_non_finite_numbers_are_refused(tmp_path, value):
    path = config_in(tmp_path, f"[OpenAI]\nTEMPERATURE={value}\n")
    with pytest.raises(ConfigError, match=r"TEMPERATURE = .* is not valid \(expected a finite number\); set it to a number or nothing"):
        openai_defaults(read_config(tmp_path))
    with pytest.raises(ConfigError) as error:
        openai_defaults(read_config(tmp_path))
    assert str(path) in str(error.value)


def test_an_unreadable_file_is_named_with_what_to_do(tmp_path, monkeypatch):
    path = config_in(tmp_path, "[OpenAI]\nMODEL=x\n")
    real_open = Path.open

    def refuse(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(ConfigError, match=r"config\.ini: cannot read the file \(Permission denied\); fix its permissions or remove it"):
        read_config(tmp_path)


def test_a_missing_key_or_section_is_named(tmp_path):
    config = configparser.ConfigParser()
    with pytest.raises(ConfigError, match=r"\[OpenAI\] API_TYPE is missing; set it to openai or azure"):
        openai_defaults(config)


def test_a_section_in_the_wrong_case_is_warned_about(tmp_path, caplog):
    config_in(tmp_path, "[openai]\nMODEL=gpt-4.1\n")
    assert openai_defaults(read_config(tmp_path))["model"] != "gpt-4.1"
    assert "section [openai] is ignored; section names are case-sensitive: use [OpenAI]" in caplog.text


def test_unknown_api_types_are_refused_everywhere(tmp_path):
    path = config_in(tmp_path, "[OpenAI]\nAPI_TYPE=bedrock\n")
    with pytest.raises(ConfigError, match=rf"{path}: \[OpenAI\] API_TYPE = 'bedrock' is not valid \(expected one of openai, azure\)"):
        openai_defaults(read_config(tmp_path))
    with pytest.raises(ConfigError, match=r"unknown API type 'bedrock'; registered: azure, openai"):
        openai_utils.force_api_type("bedrock")
    with pytest.raises(ConfigError, match=r"unknown default 'modle'"):
        openai_utils.force_default_value("modle", "x")
