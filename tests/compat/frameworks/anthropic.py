"""anthropic's SDK as a user tests it: messages created, streamed, and a tool_use round trip."""
import pytest

anthropic = pytest.importorskip("anthropic")

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
TOOLS = [{"name": "weather", "description": "The weather in a city.", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


def test_message(llm_cassette, out):
    message = anthropic.Anthropic().messages.create(model="claude-haiku-4-5", max_tokens=100, messages=QUESTION)
    assert message.content[0].text == "echo: What is the capital of France?"
    out([message.content[0].text, message.usage.input_tokens, message.usage.output_tokens])


def test_stream(llm_cassette, out):
    with anthropic.Anthropic().messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=QUESTION) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: What is the capital of France?" and final.stop_reason == "end_turn"
    out([text, final.usage.output_tokens])


def test_tool_use_round_trip(llm_cassette, out):
    client = anthropic.Anthropic()
    asked = client.messages.create(model="claude-haiku-4-5", max_tokens=100, tools=TOOLS, messages=[{"role": "user", "content": "Oslo"}])
    use = next(block for block in asked.content if block.type == "tool_use")
    result = {"type": "tool_result", "tool_use_id": use.id, "content": f"snow in {use.input['city']}"}
    messages = [{"role": "user", "content": "Oslo"}, {"role": "assistant", "content": asked.content}, {"role": "user", "content": [result]}]
    answer = client.messages.create(model="claude-haiku-4-5", max_tokens=100, tools=TOOLS, messages=messages)
    assert answer.content[0].text == "echo: snow in Oslo"
    out([use.input, answer.content[0].text])
