"""Offline token counts against the usage the service billed: one counting path for
``llmcache tokens`` and ``llmcache verify``.

`count_input_tokens` counts what a recorded request's ``usage.prompt_tokens`` /
``usage.input_tokens`` should be with `tinytroupe.tokens` (chat completions, the Responses API,
embeddings); `measure` compares the counts with the recorded usage, per model. Exchanges come from
cassettes (any flavour `cassette.load` reads) or from JSONL dumps with one exchange per line
(``uri``, ``request_json``, ``status``, ``response_json`` or ``response_body_text``,
``response_headers``), read through `pytest_llmcache.exchange`.

Only exchanges that succeeded and report usage are measured; requests with image, audio or file
parts are skipped because only text is counted. The model is the one the response names.
"""
from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmcache import cassette as cassette_file
from pytest_llmcache.exchange import CHAT, EMBEDDINGS, RESPONSES, Exchange, interpret, read_exchange

__all__ = ["COUNTED_KINDS", "Case", "ModelStats", "TokenReport", "count_input_tokens", "iter_exchanges", "measure", "record_exchange", "unmeasurable"]

COUNTED_KINDS = (CHAT, RESPONSES, EMBEDDINGS)
_MEDIA_PARTS = frozenset({"image_url", "input_image", "input_audio", "audio", "file", "input_file", "image"})
_WORST_SHOWN = 3


@dataclass(frozen=True)
class Located:
    """An exchange and where it was read (``file#index`` or ``file:line``)."""

    location: str
    exchange: Exchange


@dataclass(frozen=True)
class Case:
    """One exchange whose count differs from what was billed."""

    location: str
    counted: int
    billed: int

    @property
    def diff(self) -> int:
        return self.counted - self.billed


@dataclass
class ModelStats:
    """Agreement between counted and billed input tokens for one model."""

    count: int = 0
    exact: int = 0
    off_by_one: int = 0
    off_by_more: int = 0
    cases: list[Case] = field(default_factory=list)

    def add(self, location: str, counted: int, billed: int) -> None:
        self.count += 1
        diff = counted - billed
        if diff == 0:
            self.exact += 1
        elif abs(diff) == 1:
            self.off_by_one += 1
        else:
            self.off_by_more += 1
        if diff:
            self.cases.append(Case(location, counted, billed))

    def worst(self, limit: int = _WORST_SHOWN) -> list[Case]:
        return sorted(self.cases, key=lambda case: -abs(case.diff))[:limit]

    def as_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "exact": self.exact,
            "off_by_one": self.off_by_one,
            "off_by_more": self.off_by_more,
            "exact_pct": round(100.0 * self.exact / self.count, 1) if self.count else None,
            "worst": [{"location": c.location, "counted": c.counted, "billed": c.billed, "diff": c.diff} for c in self.worst()],
        }


@dataclass
class TokenReport:
    """Per-model agreement plus the reasons exchanges were not measured."""

    models: dict[str, ModelStats] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    fallback_models: set[str] = field(default_factory=set)

    def total(self) -> ModelStats:
        total = ModelStats()
        for stats in self.models.values():
            total.count += stats.count
            total.exact += stats.exact
            total.off_by_one += stats.off_by_one
            total.off_by_more += stats.off_by_more
            total.cases.extend(stats.cases)
        return total

    def as_json(self) -> dict[str, Any]:
        return {
            "models": {name: stats.as_json() for name, stats in sorted(self.models.items())},
            "total": self.total().as_json(),
            "skipped": dict(sorted(self.skipped.items())),
            "fallback_models": sorted(self.fallback_models),
        }


# -- loading --------------------------------------------------------------------------------------


def record_exchange(record: Mapping[str, Any], index: int = 0) -> Exchange:
    """The exchange of one JSONL record (``uri``, ``method``, ``request_json``, ``status``,
    ``response_headers``, ``response_json`` or ``response_body_text``)."""
    body = record.get("response_json")
    status = record.get("status")
    return interpret(
        index=index,
        method=str(record.get("method") or "POST"),
        uri=str(record.get("uri") or ""),
        status=status if isinstance(status, int) else None,
        request_headers={},
        request_body=record.get("request_json"),
        response_headers=record.get("response_headers") or {},
        response_body=body if body is not None else record.get("response_body_text"),
    )


def _jsonl(path: Path) -> Iterator[Located]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as err:
                raise ValueError(f"{path}:{number}: not a JSON line ({err})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number}: an exchange must be a JSON object")
            exchange = record_exchange(record, number)
            yield Located(f"{path}:{number}", exchange)


def _cassette(path: Path) -> Iterator[Located]:
    for index, interaction in enumerate(cassette_file.load(path)):
        yield Located(f"{path}#{index}", read_exchange(interaction, index))


def iter_exchanges(files: Iterable[Path]) -> Iterator[Located]:
    """The exchanges recorded in JSONL files and cassettes."""
    for file in files:
        yield from _jsonl(file) if file.suffix == ".jsonl" else _cassette(file)


# -- counting -------------------------------------------------------------------------------------


def _has_media(exchange: Exchange) -> bool:
    items: list[Any] = list(exchange.messages)
    if exchange.kind == RESPONSES and isinstance(exchange.input, list):
        items += [item for item in exchange.input if isinstance(item, dict)]
    for item in items:
        content = item.get("content")
        if isinstance(content, list) and any(isinstance(part, Mapping) and part.get("type") in _MEDIA_PARTS for part in content):
            return True
    return False


def unmeasurable(exchange: Exchange) -> str | None:
    """Why `exchange`'s input tokens can't be checked offline, or None when they can."""
    if exchange.kind not in COUNTED_KINDS:
        return "other endpoint"
    if not exchange.succeeded:
        return "error response"
    if exchange.usage is None:
        return "no usage"
    if not isinstance(exchange.request, dict):
        return "no request body"
    if _has_media(exchange):
        return "image/audio/file parts"
    if not exchange.billed_model:
        return "no model"
    return None


def count_input_tokens(exchange: Exchange, model: str) -> int:
    """What `tinytroupe.tokens` counts for the request of `exchange` (a measurable one)."""
    from tinytroupe import tokens  # loads the rank files: only once something is counted

    request = exchange.request
    if exchange.kind == EMBEDDINGS:
        return tokens.count_embedding_tokens(request.get("input") or "", model)
    if exchange.kind == RESPONSES:
        return tokens.count_responses_tokens(request, model)
    return tokens.count_tokens(
        list(exchange.messages),
        model,
        tools=request.get("tools"),
        functions=request.get("functions"),
        response_format=request.get("response_format"),
        tool_choice=request.get("tool_choice", request.get("function_call")),
    )


def measure(exchanges: Iterable[Located]) -> TokenReport:
    """Count every measurable exchange and compare it with its billed usage."""
    from tinytroupe.tokens import UnknownModelWarning

    report = TokenReport()
    for located in exchanges:
        exchange = located.exchange
        reason = unmeasurable(exchange)
        if reason is not None:
            report.skipped[reason] += 1
            continue
        model = str(exchange.billed_model)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnknownModelWarning)
            counted = count_input_tokens(exchange, model)
        if any(issubclass(warning.category, UnknownModelWarning) for warning in caught):
            report.fallback_models.add(model)
        assert exchange.usage is not None  # unmeasurable() said so
        report.models.setdefault(model, ModelStats()).add(located.location, counted, exchange.usage.input_tokens)
    return report
