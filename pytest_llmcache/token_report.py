"""``llmcache tokens PATH...``: check offline token counts against real billing.

Reads recorded exchanges, counts each request's prompt tokens with
:mod:`tinytroupe.tokens` and compares the count with the ``usage`` the
service returned.  Accepted inputs:

* JSONL files with one exchange per line (``request_json`` plus
  ``response_json`` / ``response_body_text`` / ``usage``, as in
  ``exchanges.jsonl``);
* vcrpy / pytest-recording YAML cassettes, including pydantic-ai's
  ``parsed_body`` variant, gzip-compressed (``!!binary``) bodies and
  server-sent-event streams;
* directories, searched recursively for ``*.jsonl``, ``*.yaml`` and ``*.yml``.

Only chat-completions and embeddings exchanges that succeeded and report
usage are measured; requests with image, audio or file parts are skipped
because only text is counted.  The model is the one the response names.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterator, Mapping, Sequence
from urllib.parse import unquote, urlparse

from pytest_llmcache import cassette as cassette_file
from pytest_llmcache.errors import LLMCacheError
from tinytroupe import tokens

_MEDIA_PARTS = frozenset({"image_url", "input_image", "input_audio", "audio", "file", "input_file"})
_WORST_SHOWN = 3


@dataclass
class Exchange:
    """One recorded request/response pair, reduced to what counting needs."""

    location: str
    endpoint: str | None = None  # "chat.completions" or "embeddings"
    request: Mapping[str, Any] | None = None
    response: Any = None  # parsed JSON, SSE text, or None
    status: int | None = None
    usage: Mapping[str, Any] | None = None
    deployment: str | None = None  # Azure deployment named in the URL


@dataclass
class ModelStats:
    """Agreement between counted and billed prompt tokens for one model."""

    count: int = 0
    exact: int = 0
    off_by_one: int = 0
    off_by_more: int = 0
    cases: list[dict[str, Any]] = field(default_factory=list)

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
            self.cases.append({"location": location, "counted": counted, "billed": billed, "diff": diff})

    def worst(self, limit: int = _WORST_SHOWN) -> list[dict[str, Any]]:
        return sorted(self.cases, key=lambda case: -abs(case["diff"]))[:limit]

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "exact": self.exact,
            "off_by_one": self.off_by_one,
            "off_by_more": self.off_by_more,
            "exact_pct": round(100.0 * self.exact / self.count, 1) if self.count else None,
            "worst": self.worst(),
        }


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def _endpoint(uri: str | None) -> tuple[str | None, str | None]:
    """Endpoint kind and Azure deployment name of a request URL."""
    path = unquote(urlparse(uri or "").path).rstrip("/")
    deployment = None
    parts = path.split("/")
    if "deployments" in parts and parts.index("deployments") + 1 < len(parts):
        deployment = parts[parts.index("deployments") + 1]
    if path.endswith("/chat/completions"):
        return "chat.completions", deployment
    if path.endswith("/embeddings"):
        return "embeddings", deployment
    return None, deployment


def _as_text(body: Any) -> Any:
    """A body (bytes or text) as parsed JSON, or as text (an SSE stream)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


def _load_jsonl(path: Path) -> Iterator[Exchange]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            endpoint, deployment = _endpoint(record.get("uri"))
            response = record.get("response_json")
            if response is None:
                response = _as_text(record.get("response_body_text"))
            yield Exchange(
                location=f"{path}:{number}",
                endpoint=record.get("endpoint") or endpoint,
                request=record.get("request_json"),
                response=response,
                status=record.get("status"),
                usage=record.get("usage"),
                deployment=deployment,
            )


def _load_cassette(path: Path) -> Iterator[Exchange]:
    # The cassette module reads every flavour: ours, vcrpy's (gzip, !!binary), pydantic-ai's parsed_body.
    for index, interaction in enumerate(cassette_file.load(path)):
        request, response = interaction["request"], interaction["response"]
        endpoint, deployment = _endpoint(request["uri"])
        body = _as_text(cassette_file.request_body(interaction))
        yield Exchange(
            location=f"{path}#{index}",
            endpoint=endpoint,
            request=body if isinstance(body, Mapping) else None,
            response=_as_text(cassette_file.response_body(interaction)),
            status=response["status"]["code"],
            deployment=deployment,
        )


def iter_exchanges(paths: Sequence[str | Path]) -> Iterator[Exchange]:
    """Exchanges recorded in the given JSONL files, cassettes and directories."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in (".jsonl", ".yaml", ".yml"))
        elif path.exists():
            files = [path]
        else:
            raise FileNotFoundError(given)
        for file in files:
            yield from (_load_jsonl(file) if file.suffix == ".jsonl" else _load_cassette(file))


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------


def _sse_events(text: str) -> Iterator[Mapping[str, Any]]:
    for line in text.splitlines():
        if line.startswith("data:"):
            payload = line[5:].strip()
            if payload and payload != "[DONE]":
                try:
                    event = json.loads(payload)
                except ValueError:
                    continue
                if isinstance(event, Mapping):
                    yield event


def response_model_and_usage(response: Any) -> tuple[str | None, Mapping[str, Any] | None]:
    """Model name and usage reported by a JSON or streamed (SSE) response."""
    if isinstance(response, Mapping):
        return response.get("model"), response.get("usage")
    model = usage = None
    if isinstance(response, str):
        for event in _sse_events(response):
            model = model or event.get("model")  # Azure opens with a model-less chunk
            usage = event.get("usage") or usage
    return model, usage


def _has_media(request: Mapping[str, Any]) -> bool:
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list) and any(
            isinstance(part, Mapping) and part.get("type") in _MEDIA_PARTS for part in content
        ):
            return True
    return False


def count_request(endpoint: str, request: Mapping[str, Any], model: str) -> int:
    """Offline prompt-token count of a chat-completions or embeddings request."""
    if endpoint == "embeddings":
        return tokens.count_embedding_tokens(request.get("input", ""), model)
    return tokens.count_tokens(
        request.get("messages") or [],
        model,
        tools=request.get("tools"),
        functions=request.get("functions"),
        response_format=request.get("response_format"),
        tool_choice=request.get("tool_choice", request.get("function_call")),
    )


@dataclass
class Report:
    """Per-model agreement plus the reasons exchanges were not measured."""

    models: dict[str, ModelStats] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "models": {name: stats.as_dict() for name, stats in sorted(self.models.items())},
            "total": self.total().as_dict(),
            "skipped": dict(sorted(self.skipped.items())),
            "fallback_models": sorted(self.fallback_models),
        }


def measure(exchanges: Iterator[Exchange]) -> Report:
    """Count every measurable exchange and compare it with its billed usage."""
    report = Report()
    for exchange in exchanges:
        if exchange.endpoint not in ("chat.completions", "embeddings"):
            report.skipped["other endpoint"] += 1
            continue
        if exchange.status not in (None, 200):
            report.skipped["error response"] += 1
            continue
        model, usage = response_model_and_usage(exchange.response)
        usage = exchange.usage or usage
        if not usage or not isinstance(usage.get("prompt_tokens"), int):
            report.skipped["no usage"] += 1
            continue
        request = exchange.request
        if not isinstance(request, Mapping):
            report.skipped["no request body"] += 1
            continue
        if _has_media(request):
            report.skipped["image/audio/file parts"] += 1
            continue
        model = model or request.get("model") or exchange.deployment
        if not model:
            report.skipped["no model"] += 1
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", tokens.UnknownModelWarning)
            counted = count_request(exchange.endpoint, request, model)
        if any(issubclass(w.category, tokens.UnknownModelWarning) for w in caught):
            report.fallback_models.add(model)
        report.models.setdefault(model, ModelStats()).add(exchange.location, counted, usage["prompt_tokens"])
    return report


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def format_report(report: Report) -> str:
    """Human-readable table: per model exact / off-by-one / off-by-more."""
    rows = [(name, stats) for name, stats in sorted(report.models.items())]
    rows.append(("TOTAL", report.total()))
    width = max(len(name) for name, _ in rows)
    lines = [f"{'model':<{width}}  {'n':>5} {'exact':>6} {'off±1':>6} {'off>1':>6} {'exact%':>7}"]
    for name, stats in rows:
        pct = f"{100.0 * stats.exact / stats.count:.1f}%" if stats.count else "-"
        lines.append(
            f"{name:<{width}}  {stats.count:>5} {stats.exact:>6} {stats.off_by_one:>6}"
            f" {stats.off_by_more:>6} {pct:>7}"
        )
    worst = [(name, case) for name, stats in rows[:-1] for case in stats.worst()]
    if worst:
        lines.append("")
        lines.append("worst cases (counted vs billed):")
        for name, case in sorted(worst, key=lambda item: -abs(item[1]["diff"])):
            lines.append(
                f"  {case['location']}  {name}: counted {case['counted']}, "
                f"billed {case['billed']} ({case['diff']:+d})"
            )
    if report.skipped:
        skipped = ", ".join(f"{reason}: {n}" for reason, n in sorted(report.skipped.items()))
        lines.append("")
        lines.append(f"skipped: {skipped}")
    if report.fallback_models:
        lines.append(f"unknown models (counted with o200k_base): {', '.join(sorted(report.fallback_models))}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``tokens`` command's arguments on ``parser``."""
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="exchanges JSONL file, cassette YAML file, or directory of them",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    """Print the report; exit status 1 if nothing could be measured, 2 on bad paths."""
    try:
        report = measure(iter_exchanges(args.paths))
    except (OSError, ValueError, LLMCacheError) as error:
        print(f"llmcache tokens: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(format_report(report))
    return 0 if report.models else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m pytest_llmcache.token_report``."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_llmcache.token_report",
        description="Compare offline prompt-token counts with the usage recorded in exchanges.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
