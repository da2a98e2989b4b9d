"""simonw's llm as a user tests it: its OpenAI plugin, prompted and streamed, logs in a temporary LLM_USER_PATH."""
import pytest

llm = pytest.importorskip("llm")


@pytest.fixture(autouse=True)
def llm_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path))


def test_prompt(llm_cassette, out):
    response = llm.get_model("gpt-4o-mini").prompt("What is the capital of France?", system="Be brief.")
    assert response.text() == "echo: What is the capital of France?"
    out([response.text(), response.input_tokens, response.output_tokens])


def test_stream_and_conversation(llm_cassette, out):
    conversation = llm.get_model("gpt-4o-mini").conversation()
    first = "".join(conversation.prompt("Name a colour."))
    second = conversation.prompt("Another one.").text()
    assert (first, second) == ("echo: Name a colour.", "echo: Another one.")
    out([first, second])
