"""``llmcache show``: a cassette's exchanges, readable."""
from __future__ import annotations

import argparse
import json
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pytest_llmcache import cassette as cassette_file
from pytest_llmcache._commands.common import EXIT_OK, InputError, display, emit_json
from pytest_llmcache.exchange import EMBEDDINGS, Exchange, read_exchange
from pytest_llmcache.errors import CassetteError

HELP = "print a cassette's exchanges: messages, the answer, usage, status"
_WIDTH = 100
_INDENT = "    "


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("show", help=HELP, description=HELP + ".", parents=parents)
    parser.add_argument("cassette", type=Path, metavar="CASSETTE", help="a cassette file")
    parser.add_argument("--full", action="store_true", help="print long texts whole (default: cut at 400 characters)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        interactions = cassette_file.load(args.cassette)
    except FileNotFoundError:
        raise InputError(f"{args.cassette}: no such file") from None
    except CassetteError as err:
        raise InputError(f"{display(err.path)}: {err.problem}") from None
    exchanges = [read_exchange(interaction, index) for index, interaction in enumerate(interactions)]
    if args.json:
        emit_json({"path": display(args.cassette), "exchanges": [summary(exchange) for exchange in exchanges]})
        return EXIT_OK
    limit = None if args.full else 400
    print(f"{display(args.cassette)}: {len(exchanges)} exchange(s)")
    for exchange in exchanges:
        print()
        print("\n".join(render(exchange, limit)))
    return EXIT_OK


def summary(exchange: Exchange) -> dict[str, Any]:
    """The JSON description of one exchange (``show --json``)."""
    answer = asdict(exchange.answer)
    if exchange.kind != EMBEDDINGS:
        del answer["vectors"]
    return {
        "index": exchange.index,
        "method": exchange.method,
        "path": exchange.path,
        "provider": exchange.provider,
        "kind": exchange.kind,
        "model": exchange.model,
        "deployment": exchange.deployment,
        "response_model": exchange.response_model,
        "streamed": exchange.streamed,
        "status": exchange.status,
        "usage": None if exchange.usage is None else asdict(exchange.usage),
        "error": None if exchange.error is None else asdict(exchange.error),
        "answer": answer,
    }


def _cut(text: str, limit: int | None) -> str:
    return text if limit is None or len(text) <= limit else text[: limit - 1] + f"… ({len(text)} characters)"


def _block(label: str, text: str, limit: int | None) -> list[str]:
    """`label`: then `text` wrapped and indented below it."""
    lines = [f"  {label}:"]
    for paragraph in _cut(text, limit).splitlines() or [""]:
        lines += textwrap.wrap(paragraph, _WIDTH, initial_indent=_INDENT, subsequent_indent=_INDENT) or [_INDENT.rstrip()]
    return lines


def _content_text(content: Any) -> str:
    """A message's content as text; non-text parts (images, files, audio) named, not dumped."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            text = part.get("text") if isinstance(part, dict) else None
            parts.append(text if isinstance(text, str) else f"[{kind or 'part'}]")
        return " ".join(parts)
    return "" if content is None else json.dumps(content)


def _function_name(tool: Any) -> str:
    """A tool definition's function name, else its type (e.g. "web_search")."""
    function = tool.get("function") if isinstance(tool, dict) else None
    if isinstance(function, dict) and function.get("name"):
        return str(function["name"])
    return str(tool.get("type", "?")) if isinstance(tool, dict) else "?"


def _message_lines(message: Any, limit: int | None) -> list[str]:
    """A chat / Anthropic message or a Responses API input item, as a labelled block."""
    if not isinstance(message, dict):
        return []
    kind = message.get("type")
    if kind == "function_call":
        return [f"  [call] {message.get('name')}({_cut(str(message.get('arguments', '')), limit)})  id {message.get('call_id')}"]
    if kind == "function_call_output":
        return _block(f"[output of {message.get('call_id')}]", _content_text(message.get("output")), limit)
    if kind not in (None, "message"):
        return [f"  [{kind}]"]
    parts = [_content_text(message.get("content") if "content" in message else message.get("parts"))]
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            parts.append(f"calls {function.get('name')}({function.get('arguments', '')})")
    return _block(f"[{message.get('role', '?')}]", "\n".join(part for part in parts if part), limit)


def render(exchange: Exchange, limit: int | None) -> list[str]:
    """The text lines for one exchange."""
    model = exchange.model or "?"
    if exchange.response_model and exchange.response_model != exchange.model:
        model += f" -> {exchange.response_model}"
    flags = ", streamed" if exchange.streamed else ""
    status = "?" if exchange.status is None else exchange.status
    lines = [f"#{exchange.index}  {exchange.method} {exchange.path}  ({exchange.provider}, {model}{flags})  status {status}"]
    request = exchange.request if isinstance(exchange.request, dict) else {}
    shown = ("messages", "model", "tools", "input", "functions", "instructions", "system", "contents")
    options = {name: value for name, value in request.items() if name not in shown}
    if options:
        lines.append(f"  options: {_cut(json.dumps(options, ensure_ascii=False), limit)}")
    if isinstance(request.get("tools"), list):
        lines.append(f"  tools: {', '.join(_function_name(tool) for tool in request['tools'])}")
    for name in ("instructions", "system"):
        if request.get(name):
            lines += _block(name, _content_text(request[name]), limit)
    for message in exchange.messages:
        lines += _message_lines(message, limit)
    given = exchange.input
    if exchange.kind == EMBEDDINGS:
        lines += _block("input", "\n".join(map(str, given if isinstance(given, list) else [given])), limit)
    elif isinstance(given, str):
        lines += _block("[user]", given, limit)
    elif isinstance(given, list):
        for item in given:
            lines += _message_lines(item, limit)
    lines += _response_lines(exchange, limit)
    if exchange.usage is not None:
        usage = exchange.usage
        lines.append(f"  usage: input {usage.input_tokens}, output {usage.output_tokens}, total {usage.input_tokens + usage.output_tokens}")
    return lines


def _response_lines(exchange: Exchange, limit: int | None) -> list[str]:
    error = exchange.error
    if error is not None:
        return _block(f"error {exchange.status} {error.code or ''}".rstrip(), error.message, limit)
    answer = exchange.answer
    if exchange.kind == EMBEDDINGS:
        sizes = answer.vectors
        return [f"  answer: {len(sizes)} vector(s) of {', '.join(map(str, sorted(set(sizes))))} dimensions"]
    lines = []
    if answer.text is not None:
        lines += _block(f"answer [{answer.role or 'assistant'}]", answer.text, limit)
    if answer.refusal:
        lines += _block("refusal", answer.refusal, limit)
    for call in answer.tool_calls:
        lines.append(f"  tool call: {call.name}({_cut(call.arguments, limit)})  id {call.id}")
    if answer.finish_reason:
        lines.append(f"  finish reason: {answer.finish_reason}")
    if not lines and not exchange.readable:
        lines.append("  answer: (a body that is neither JSON nor an event stream)")
    return lines
