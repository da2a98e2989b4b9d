"""The matching key: what counts, what doesn't, and the closest-request diagnostics."""
from __future__ import annotations

import json
import random

from hypothesis import given
from hypothesis import strategies as st

from pytest_llmcache.matching import RequestView, body_diff, closest, request_key, stored_request_key

URI = "https://api.openai.com/v1/chat/completions"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=15,
)


def shuffled(value, rng):
    """`value` with every object's keys in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: shuffled(item, rng) for key, item in items}
    if isinstance(value, list):
        return [shuffled(item, rng) for item in value]
    return value


@given(document=st.dictionaries(st.text(max_size=5), json_values, max_size=6), seed=st.integers(), indent=st.sampled_from([None, 2]))
def test_key_ignores_json_key_order_and_whitespace(document, seed, indent):
    other = json.dumps(shuffled(document, random.Random(seed)), indent=indent).encode()
    assert request_key("POST", URI, json.dumps(document, separators=(",", ":")).encode()) == request_key("POST", URI, other)


def test_key_ignores_host_and_key_params_but_not_path_version_method_or_body():
    body = b'{"model":"m","messages":[]}'
    key = request_key("POST", "https://r1.openai.azure.com/openai/deployments/d/chat/completions?api-version=1", body)
    assert key == request_key("post", "https://placeholder.openai.azure.com/openai/deployments/d/chat/completions?api-key=x&api-version=1", body)
    assert key != request_key("POST", "https://r1.openai.azure.com/openai/deployments/d/chat/completions?api-version=2", body)
    assert key != request_key("POST", "https://r1.openai.azure.com/openai/deployments/e/chat/completions?api-version=1", body)
    assert key != request_key("GET", "https://r1.openai.azure.com/openai/deployments/d/chat/completions?api-version=1", body)
    assert key != request_key("POST", "https://r1.openai.azure.com/openai/deployments/d/chat/completions?api-version=1", b'{"model":"n","messages":[]}')


def test_stored_request_keys_equal_live_keys():
    stored = {"method": "POST", "uri": "https://api.openai.test/v1/chat/completions", "body": {"json": {"b": 1, "a": [1, 2]}, "layout": "compact"}}
    assert stored_request_key(stored) == request_key("POST", URI, b'{"a":[1,2],"b":1}')
    as_text = {**stored, "body": {"string": '{"b": 1, "a": [1, 2]}'}}
    assert stored_request_key(as_text) == stored_request_key(stored)


def test_closest_prefers_same_path_then_similar_body_and_diffs_it():
    def chat(text):
        return RequestView("POST", URI, json.dumps({"model": "m", "messages": [{"role": "user", "content": text}]}).encode())

    recorded = [RequestView("POST", "https://x/v1/embeddings", b'{"input":["Capital of France?"]}'), chat("Weather today?"), chat("Capital of France?")]
    sent = chat("Capital of Spain?")
    index, found = closest(sent, recorded)
    assert index == 2
    diff = body_diff(found, sent)
    assert '-      "content": "Capital of France?",' in diff and '+      "content": "Capital of Spain?",' in diff
    assert sent.summary() == "POST /v1/chat/completions  model='m'  last message: 'Capital of Spain?'"
    assert closest(sent, []) is None
