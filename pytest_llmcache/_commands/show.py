"""``llmcache show``: a cassette's exchanges, readable."""
from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Any

from pytest_llmcache import cassette as cassette_file
from pytest_llmcache._commands.common import EXIT_OK, InputError, display, emit_json
from pytest_llmcache._commands.exchange import Exchange
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
    exchanges = [Exchange.of(index, interaction) for index, interaction in enumerate(interactions)]
    if args.json:
        emit_json({"path": display(args.cassette), "exchanges": [exchange.summary() for exchange in exchanges]})
        return EXIT_OK
    limit = None if args.full else 400
    print(f"{display(args.cassette)}: {len(exchanges)} exchange(s)")
    for exchange in exchanges:
        print()
        print("\n".join(render(exchange, limit)))
    return EXIT_OK


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
            parts.append(str(part.get("text", "")) if kind == "text" else f"[{kind or 'part'}]")
        return " ".join(parts)
    return "" if content is None else json.dumps(content)


def _function_name(tool: Any) -> str:
    """A tool definition's function name, else its type (e.g. "web_search")."""
    function = tool.get("function") if isinstance(tool, dict) else None
    if isinstance(function, dict) and function.get("name"):
        return str(function["name"])
    return str(tool.get("type", "?")) if isinstance(tool, dict) else "?"


def render(exchange: Exchange, limit: int | None) -> list[str]:
    """The text lines for one exchange."""
    model = exchange.model or "?"
    if exchange.response_model and exchange.response_model != exchange.model:
        model += f" -> {exchange.response_model}"
    flags = ", streamed" if exchange.streamed else ""
    lines = [f"#{exchange.index}  {exchange.method} {exchange.path}  ({exchange.api}, {model}{flags})  status {exchange.status}"]
    request = exchange.request if isinstance(exchange.request, dict) else {}
    options = {name: value for name, value in request.items() if name not in ("messages", "model", "tools", "input", "functions")}
    if options:
        lines.append(f"  options: {_cut(json.dumps(options, ensure_ascii=False), limit)}")
    if isinstance(request.get("tools"), list):
        lines.append(f"  tools: {', '.join(_function_name(tool) for tool in request['tools'])}")
    for message in exchange.messages or ():
        if not isinstance(message, dict):
            continue
        parts = [_content_text(message.get("content"))]
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                parts.append(f"calls {function.get('name')}({function.get('arguments', '')})")
        lines += _block(f"[{message.get('role', '?')}]", "\n".join(part for part in parts if part), limit)
    if exchange.endpoint == "embeddings":
        inputs = request.get("input")
        lines += _block("input", "\n".join(map(str, inputs if isinstance(inputs, list) else [inputs])), limit)
    lines += _response_lines(exchange, limit)
    if exchange.usage is not None:
        lines.append(f"  usage: {_usage_text(exchange.usage)}")
    return lines


def _usage_text(usage: dict[str, Any]) -> str:
    """``prompt 9, completion 10, total 19`` plus the non-zero details (cached, reasoning...)."""
    counts = [f"{name.removesuffix('_tokens')} {value}" for name, value in usage.items() if isinstance(value, int)]
    for name, details in usage.items():
        if isinstance(details, dict):
            counts += [f"{key.removesuffix('_tokens')} {value}" for key, value in details.items() if isinstance(value, int) and value]
    return ", ".join(counts)


def _response_lines(exchange: Exchange, limit: int | None) -> list[str]:
    error = exchange.error
    if error is not None:
        code = error.get("code") or error.get("type") or ""
        return _block(f"error {exchange.status} {code}".rstrip(), str(error.get("message", "")), limit)
    if exchange.endpoint == "embeddings":
        sizes = exchange.embeddings
        return [f"  answer: {len(sizes)} vector(s) of {', '.join(map(str, sorted(set(sizes))))} dimensions"]
    answer = exchange.answer
    lines = []
    if answer["content"] is not None:
        lines += _block(f"answer [{answer['role'] or 'assistant'}]", answer["content"], limit)
    if answer["refusal"]:
        lines += _block("refusal", answer["refusal"], limit)
    for call in answer["tool_calls"]:
        lines.append(f"  tool call: {call['name']}({_cut(call['arguments'], limit)})  id {call['id']}")
    if answer["finish_reason"]:
        lines.append(f"  finish reason: {answer['finish_reason']}")
    if not lines and exchange.response is None:
        lines.append("  answer: (not JSON)")
    return lines
