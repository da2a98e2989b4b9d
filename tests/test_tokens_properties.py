"""Properties of chat token counting, checked with hypothesis."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tinytroupe import tokens

MODELS = [
    "gpt-4o",
    "gpt-4o-mini-2024-07-18",
    "gpt-4.1",
    "gpt-3.5-turbo",
    "gpt-4",
    "o3-mini",
    "gpt-5-nano",
    "gpt-4o-search-preview",
]
ROLES = ["system", "developer", "user", "assistant"]

models = st.sampled_from(MODELS)
# Any unicode, including empty strings, whitespace and special-token look-alikes.
texts = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", " ", "\n\n", "<|endoftext|>", "héllo wörld", "日本語のテキスト", "🙂👍"]),
)
names = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
words = st.from_regex(r"[A-Za-z0-9]{1,10}", fullmatch=True)
text_parts = st.lists(st.builds(lambda t: {"type": "text", "text": t}, texts), min_size=1, max_size=3)


@st.composite
def plain_messages(draw: st.DrawFn) -> dict:
    message = {"role": draw(st.sampled_from(ROLES)), "content": draw(st.one_of(texts, text_parts))}
    if draw(st.booleans()):
        message["name"] = draw(names)
    return message


@st.composite
def tool_exchanges(draw: st.DrawFn) -> list[dict]:
    """An assistant message with ``content: None`` and its tool calls, then the results."""
    calls = []
    for i in range(draw(st.integers(min_value=1, max_value=3))):
        arguments = json.dumps(draw(st.dictionaries(words, st.one_of(texts, st.integers()), max_size=3)))
        calls.append(
            {
                "id": f"call_{i}_{draw(words)}",
                "type": "function",
                "function": {"name": draw(names), "arguments": arguments},
            }
        )
    results = [{"role": "tool", "tool_call_id": call["id"], "content": draw(texts)} for call in calls]
    return [{"role": "assistant", "content": None, "tool_calls": calls}, *results]


conversations = st.lists(
    st.one_of(plain_messages().map(lambda m: [m]), tool_exchanges()), max_size=5
).map(lambda turns: [message for turn in turns for message in turn])


def _reorder(value):
    """The same data with every dict's keys in reverse order."""
    if isinstance(value, dict):
        return {key: _reorder(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder(item) for item in value]
    return value


@settings(deadline=None, max_examples=80)
@given(conversations, models)
def test_count_is_a_positive_int(messages: list[dict], model: str) -> None:
    count = tokens.count_tokens(messages, model)
    assert type(count) is int
    assert count >= tokens.reply_priming(model)


@settings(deadline=None, max_examples=80)
@given(conversations, models)
def test_total_is_sum_of_messages_plus_priming(messages: list[dict], model: str) -> None:
    per_message = [
        tokens.count_message_tokens(message, model, context=messages[:i]) for i, message in enumerate(messages)
    ]
    assert tokens.count_tokens(messages, model) == sum(per_message) + tokens.reply_priming(model)


@settings(deadline=None, max_examples=60)
@given(conversations, st.one_of(plain_messages().map(lambda m: [m]), tool_exchanges()), models)
def test_adding_messages_never_lowers_the_count(messages: list[dict], added: list[dict], model: str) -> None:
    assert tokens.count_tokens(messages + added, model) >= tokens.count_tokens(messages, model)


@settings(deadline=None, max_examples=60)
@given(conversations, plain_messages(), st.one_of(words, text_parts), models)
def test_extending_a_content_never_lowers_the_count(
    messages: list[dict], message: dict, extension, model: str
) -> None:
    longer = dict(message)
    content = message["content"]
    if isinstance(extension, str):  # another word at the end of the text
        longer["content"] = (
            [*content, {"type": "text", "text": " " + extension}]
            if isinstance(content, list)
            else f"{content} {extension}"
        )
    else:  # more text parts
        longer["content"] = (content if isinstance(content, list) else [{"type": "text", "text": content}]) + extension
    before = tokens.count_tokens([*messages, message], model)
    assert tokens.count_tokens([*messages, longer], model) >= before


@settings(deadline=None, max_examples=60)
@given(conversations, models)
def test_independent_of_key_order(messages: list[dict], model: str) -> None:
    assert tokens.count_tokens(_reorder(messages), model) == tokens.count_tokens(messages, model)


@settings(deadline=None, max_examples=80)
@given(st.sampled_from(["user", "assistant"]), texts, st.one_of(st.none(), names), models)
def test_single_plain_message_is_encoding_length_plus_overheads(
    role: str, content: str, name: str | None, model: str
) -> None:
    message = {"role": role, "content": content}
    encoding = tokens.encoding_for_model(model)
    expected = (
        tokens.TOKENS_PER_MESSAGE
        + len(encoding.encode(role))
        + len(encoding.encode(content, disallowed_special=()))
        + tokens.reply_priming(model)
    )
    if name is not None:
        message["name"] = name
        # The gpt-4o generation bills a name's own tokens; gpt-3.5 / gpt-4 and reasoning models one more.
        gpt4o_generation = model.startswith(("gpt-4o", "gpt-4.1"))
        expected += len(encoding.encode(name)) + (0 if gpt4o_generation else tokens.TOKENS_PER_NAME)
    assert tokens.count_tokens([message], model) == expected


token_ids = st.lists(st.integers(0, 100_000), max_size=20)


@settings(deadline=None, max_examples=40)
@given(st.one_of(texts, st.lists(texts, max_size=4), token_ids, st.lists(token_ids, min_size=1, max_size=3)))
def test_embeddings_are_the_sum_of_their_inputs(batch) -> None:
    model = "text-embedding-3-small"
    encoding = tokens.encoding_for_model(model)
    total = tokens.count_embedding_tokens(batch, model)
    if isinstance(batch, str):
        assert total == len(encoding.encode(batch, disallowed_special=()))
    elif all(isinstance(item, int) for item in batch):
        assert total == len(batch)  # one list of token ids
    else:
        assert total == sum(
            len(item) if isinstance(item, list) else len(encoding.encode(item, disallowed_special=()))
            for item in batch
        )
