"""Fixtures shared by the examples."""
from __future__ import annotations

from typing import Any

import pytest

from tinytroupe import openai_utils

SAMPLING_DEFAULTS = ("temperature", "max_tokens", "top_p", "frequency_penalty", "presence_penalty")


@pytest.fixture
def plain_client(llm_client: Any) -> Any:
    """tinytroupe's client sending only what each call names.

    By default `send_message` adds temperature, max_tokens, top_p and the penalties from
    config.ini; the requests other projects recorded carry none of them, so they are switched off
    here (a default of None is not sent). `llm_client` restores every default after the test.
    """
    for name in SAMPLING_DEFAULTS:
        openai_utils.force_default_value(name, None)
    return llm_client
