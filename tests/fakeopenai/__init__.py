"""The project's loopback server for tests: real HTTP on 127.0.0.1 speaking OpenAI and Azure OpenAI
(chat completions, Responses API, embeddings), Anthropic Messages and Gemini generateContent, JSON
and SSE, with deterministic answers and scriptable faults.

One module per API (`openai_api`, `anthropic_api`, `gemini_api`) translates its wire format to and
from the shared answering policy in `wire`; `server` is the HTTP machinery.
"""

from .openai_api import embedding_vector
from .server import FakeOpenAIServer, Reply
from .wire import ReceivedRequest

__all__ = ["FakeOpenAIServer", "ReceivedRequest", "Reply", "embedding_vector"]
