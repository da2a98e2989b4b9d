"""The benchmark's workload: deterministic chat interactions and the vcrpy cassettes holding them.

Every interaction is a realistic chat-completions exchange (a system prompt, a few turns,
200-2,000 characters of messages) with the exact request bytes the openai SDK sends for it and
the response bytes a server would answer. Everything derives from a seed, so two runs measure
the same thing.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_URL = "https://api.openai.com/v1"
CHAT_PATH = "/chat/completions"
API_KEY = "sk-bench-not-a-real-key"
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")

_WORDS = ["agent", "persona", "market", "survey", "customer", "product", "coffee", "morning", "office", "meeting", "budget", "plan", "design", "review", "feedback", "price", "launch", "campaign", "audience", "story", "believe", "prefer", "think", "feel", "quickly", "carefully", "usually", "rarely", "because", "although", "whenever", "therefore", "however", "meanwhile", "team", "manager", "engineer", "student", "teacher", "doctor", "family", "friend", "city", "village", "weekend", "holiday", "weather", "train", "ticket", "report", "quarter", "growth", "risk", "option", "choice", "reason", "answer", "question", "idea", "simulation", "environment", "world", "episode", "action", "observation", "memory", "goal", "intention", "conversation", "the", "a", "an", "of", "to", "in", "on", "for", "with", "about", "from", "into", "over", "under", "between", "after", "before", "during"]
_SYSTEM_PROMPTS = (
    "You are {name}, a {age}-year-old {job} living in {city}. Stay in character, answer in the "
    "first person and keep your replies short. You value {value} and dislike {dislike}.",
    "You are a market-research assistant simulating a focus group. Each participant has a persona; "
    "report their reactions faithfully, including disagreements, and never invent statistics.",
    "You extract structured facts from conversations. Answer with JSON only, using the keys "
    "'speaker', 'claim', 'confidence'. If nothing can be extracted, answer with an empty list.",
)
_NAMES = ("Lisa", "Oscar", "Marcos", "Aiko", "Fatima", "Jonas", "Priya", "Tom")
_JOBS = ("data scientist", "architect", "physician", "teacher", "barista", "product manager")
_CITIES = ("Lisbon", "Toronto", "Osaka", "Nairobi", "Berlin", "Austin")
_VALUES = ("honesty", "curiosity", "punctuality", "kindness", "efficiency")


@dataclass(frozen=True)
class Interaction:
    """One recorded exchange: a chat completion unless `path` says otherwise."""

    index: int
    body: dict[str, Any]  # keyword arguments for the SDK call (chat.completions.create), in the SDK's key order
    request_bytes: bytes  # exactly what the SDK sends
    response_bytes: bytes
    response_headers: dict[str, str] = field(default_factory=dict)
    path: str = CHAT_PATH

    @property
    def expected_content(self) -> str:
        return json.loads(self.response_bytes)["choices"][0]["message"]["content"]

    @property
    def messages_chars(self) -> int:
        return sum(len(m["content"]) for m in self.body["messages"])


def sdk_json(value: Any) -> bytes:
    """How the openai SDK serialises a JSON request body (checked by `check_sdk_bytes`)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def canonical_key(raw: bytes) -> str:
    """The floor: canonical JSON (sorted keys) of a request body, hashed."""
    canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choices(_WORDS, k=words))
    return text[:1].upper() + text[1:] + rng.choice(".?!")


def _paragraph(rng: random.Random, chars: int) -> str:
    parts: list[str] = []
    length = 0
    while length < chars:
        parts.append(_sentence(rng, rng.randint(6, 18)))
        length += len(parts[-1]) + 1
    return " ".join(parts)[:chars].rstrip() + "."


def _messages(rng: random.Random, index: int) -> list[dict[str, str]]:
    system = rng.choice(_SYSTEM_PROMPTS).format(
        name=rng.choice(_NAMES), age=rng.randint(19, 77), job=rng.choice(_JOBS), city=rng.choice(_CITIES),
        value=rng.choice(_VALUES), dislike=rng.choice(_VALUES),
    )
    budget = rng.randint(200, 2000) - len(system)  # total message characters in 200..2,000
    turns = rng.choice((1, 3, 5))  # user / assistant / user ...
    messages = [{"role": "system", "content": system}]
    for turn in range(turns):
        role = "user" if turn % 2 == 0 else "assistant"
        share = max(20, budget // (turns - turn)) if budget > 0 else 20
        text = _paragraph(rng, rng.randint(max(10, share // 2), max(20, share)))
        budget -= len(text)
        messages.append({"role": role, "content": text})
    # Distinct requests, as in a real suite: the last turn names the case.
    messages[-1]["content"] += f" (case {index})"
    return messages


def _response(rng: random.Random, index: int, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    content = _paragraph(rng, rng.randint(60, 600))
    prompt_tokens = sum(len(m["content"]) for m in body["messages"]) // 4 + 3
    completion_tokens = len(content) // 4 + 1
    document = {
        "id": f"chatcmpl-bench{index:08d}",
        "object": "chat.completion",
        "created": 1_700_000_000 + index,
        "model": body["model"] + "-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_bench0001",
    }
    raw = json.dumps(document, indent=2).encode("utf-8")  # the real API pretty-prints
    headers = {
        "content-type": "application/json",
        "openai-processing-ms": str(rng.randint(300, 4000)),
        "openai-version": "2020-10-01",
        "x-request-id": f"req_{hashlib.md5(raw).hexdigest()}",
        "x-ratelimit-remaining-requests": str(rng.randint(100, 9999)),
        "content-length": str(len(raw)),
    }
    return raw, headers


def build_interactions(n: int, seed: int = 1234) -> list[Interaction]:
    """`n` distinct chat interactions; the first k of a larger set are the set for k."""
    out = []
    for index in range(n):
        rng = random.Random(f"{seed}:{index}")
        messages = _messages(rng, index)
        body: dict[str, Any] = {"model": rng.choice(MODELS), "messages": messages}
        # Optional parameters in the order the SDK writes them (its keyword order).
        if rng.random() < 0.4:
            body["max_tokens"] = rng.choice((256, 512, 1024))
        if rng.random() < 0.7:
            body["temperature"] = round(rng.uniform(0, 1.5), 2)
        raw, headers = _response(rng, index, body)
        out.append(Interaction(index, body, sdk_json(body), raw, headers))
    return out


EMBEDDINGS_PATH = "/embeddings"


def embeddings_interaction(vectors: int = 120, dimensions: int = 1536, seed: int = 1234) -> Interaction:
    """One large exchange: an embeddings response with float vectors, pretty-printed as the
    service sends it (about 4 MB for 120 x 1,536)."""
    rng = random.Random(f"{seed}:embeddings")
    body = {"input": [f"document {index}" for index in range(vectors)], "model": "text-embedding-3-small", "encoding_format": "float"}
    response = {
        "object": "list",
        "data": [{"object": "embedding", "index": index, "embedding": [round(rng.uniform(-0.1, 0.1), 9) for _ in range(dimensions)]}
                 for index in range(vectors)],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 2 * vectors, "total_tokens": 2 * vectors},
    }
    raw = json.dumps(response, indent=2).encode("utf-8")
    return Interaction(0, body, sdk_json(body), raw, {"content-type": "application/json"}, EMBEDDINGS_PATH)


# --- the SDK's side -------------------------------------------------------------------------

SDK_REQUEST_HEADERS = {
    "accept": "application/json",
    "accept-encoding": "gzip, deflate",
    "connection": "keep-alive",
    "content-type": "application/json",
    "host": "api.openai.com",
    "user-agent": "OpenAI/Python",
}


def check_sdk_bytes(interactions: list[Interaction], count: int = 5) -> None:
    """Fail loudly if the SDK does not send exactly `request_bytes` (the cassettes would not match)."""
    import httpx2
    import openai

    seen: list[bytes] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.content)
        return httpx2.Response(200, content=interactions[len(seen) - 1].response_bytes,
                               headers={"content-type": "application/json"})

    client = openai.OpenAI(api_key=API_KEY, base_url=BASE_URL, max_retries=0,
                           http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    for interaction in interactions[:count]:
        client.chat.completions.create(**interaction.body)
    for interaction, sent in zip(interactions, seen, strict=False):  # seen: the first `count` only
        if sent != interaction.request_bytes:
            raise RuntimeError(
                f"the SDK sent different bytes than the benchmark assumes for interaction {interaction.index}:\n"
                f"  sent:    {sent[:120]!r}\n  assumed: {interaction.request_bytes[:120]!r}"
            )


# --- vcrpy cassettes ---------------------------------------------------------------------------

def vcr_cassette_dict(interactions: list[Interaction], base_url: str = BASE_URL) -> dict[str, Any]:
    """The in-memory form vcrpy's persister saves: parallel lists of Requests and response dicts."""
    from vcr.request import Request

    requests, responses = [], []
    for interaction in interactions:
        headers = dict(SDK_REQUEST_HEADERS, **{"content-length": str(len(interaction.request_bytes))})
        requests.append(Request("POST", base_url + interaction.path, interaction.request_bytes, headers))
        responses.append({
            "status": {"code": 200, "message": "OK"},
            "headers": {name: [value] for name, value in interaction.response_headers.items()},
            "body": {"string": interaction.response_bytes},
        })
    return {"requests": requests, "responses": responses}


def write_vcr_cassette(path: Path, interactions: list[Interaction], base_url: str = BASE_URL) -> Path:
    """A vcrpy YAML cassette written by vcrpy's own persister and serializer."""
    from vcr.persisters.filesystem import FilesystemPersister
    from vcr.serializers import yamlserializer

    FilesystemPersister.save_cassette(path, vcr_cassette_dict(interactions, base_url), yamlserializer)
    return path


# --- cassetter cassettes (a peer: Rust core, json-body matching) -------------------------------

def cassetter_missing() -> str | None:
    """None when cassetter (the `bench` extra) can be imported, else why not."""
    try:
        import cassetter  # noqa: F401
        from cassetter.cassette import Cassette  # noqa: F401
    except ImportError as err:
        return f"cassetter is not installed ({err}); pip install -e '.[bench]' adds it"
    except Exception as err:  # installed but broken (its compiled core, say): not raced, the run goes on
        return f"cassetter can't be imported ({type(err).__name__}: {err})"
    return None


def write_cassetter_cassette(path: Path, interactions: list[Interaction], base_url: str = BASE_URL) -> Path:
    """A cassetter YAML cassette written by cassetter's own recorder and writer."""
    from cassetter.cassette import Cassette
    from cassetter.recording import RecordMode

    path.unlink(missing_ok=True)
    cassette = Cassette(path, record_mode=RecordMode.ALL)
    cassette.load()
    for interaction in interactions:
        headers = dict(SDK_REQUEST_HEADERS, **{"content-length": str(len(interaction.request_bytes))})
        cassette.record(
            "POST", base_url + interaction.path, {name: [value] for name, value in headers.items()}, interaction.request_bytes,
            200, {name: [value] for name, value in interaction.response_headers.items()}, interaction.response_bytes,
        )
    cassette.save()
    return path


def cassetter_replaying(path: Path) -> Any:
    """cassetter's context, replay only, matching on method, URI and the JSON body."""
    from cassetter import use_cassette

    return use_cassette(path, record_mode="none", match_on=["method", "uri", "json_body"], intercept=["httpx2"])


def cassetter_recording(path: Path) -> Any:
    """cassetter's context recording into a new file at `path` (saved when the context ends)."""
    from cassetter import use_cassette

    path.unlink(missing_ok=True)
    return use_cassette(path, record_mode="once", match_on=["method", "uri", "json_body"], intercept=["httpx2"])
