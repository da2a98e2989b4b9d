"""``llmcache verify``: every cassette parses, holds nothing key-like, and its token counts agree.

Three checks, each finding a problem (exit 1):

- the file loads (not truncated, valid YAML, known format version, well-formed interactions);
- nothing the scrubber would have removed (the same rules: credential headers and query parameters
  of every provider or shaped like one, cookies, URL userinfo, key-named body fields, Azure hosts
  other than the placeholder), and no credential-shaped text in any URI, header or decoded body
  (old vcrpy cassettes hide bodies in gzip + base64, so the decoded bodies are searched, not the
  file text): OpenAI and Anthropic keys, bearer and JWT tokens, key-named fields;
- each recorded chat completion's, Responses API call's and embeddings call's usage
  (``prompt_tokens`` / ``input_tokens``) equals what `tinytroupe.tokens` counts for its request
  (within ``--tolerance``), counted the way ``llmcache tokens`` counts it; a difference means the
  library's counting drifted from the service's.
"""
from __future__ import annotations

import argparse
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterator

from pytest_llmcache._commands.common import (
    DEFAULT_DIR,
    EXIT_OK,
    EXIT_PROBLEMS,
    display,
    emit_json,
    find_cassettes,
    load_cassettes,
)
from pytest_llmcache.exchange import RESPONSES, read_exchange
from pytest_llmcache.token_report import count_input_tokens, unmeasurable
from pytest_llmcache.bodies import decode_body
from pytest_llmcache.cassette import Interaction
from pytest_llmcache.providers import AZURE, secret_host
from pytest_llmcache.scrubbing import credentials_in

HELP = "check cassettes for corruption, key-like secrets and token-count drift (for CI and pre-commit)"

_AZURE_HOSTS = "|".join(re.escape(pattern.removeprefix("*.")) for pattern in AZURE.hosts)
# (kind, pattern); group 1 is the secret itself: credentials that carry no name, found by shape.
_SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("OpenAI API key", re.compile(r"\b(sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,})")),
    ("bearer token", re.compile(r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{8,}=*)")),
    ("JWT (e.g. an Azure AD token)", re.compile(r"\b(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})")),
    ("API key field", re.compile(r"""(?i)(?:api|subscription|secret|access)[-_]?key[\\"']*\s*[:=]\s*[\\"']*([A-Za-z0-9_-]{20,})""")),
    ("Azure host", re.compile(rf"(?i)\b((?:[a-z0-9-]+\.)+(?:{_AZURE_HOSTS}))\b")),
)
# Values that mark a scrubbed or made-up credential: never reported.
# ("Bearer YOUR_KEY" is in OpenAI's own 401 message.)
_PLACEHOLDER = re.compile(r"(?i)placeholder|redacted|filtered|dummy|fake|example|test|xxx|your[-_]?(?:api[-_]?)?key|\*\*\*|^<.*>$")


@dataclass(frozen=True)
class Problem:
    path: str
    check: str  # "parse", "secret", "tokens"
    message: str
    interaction: int | None = None


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("verify", help=HELP, description=__doc__.split("\n\n", 1)[1], parents=parents,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_DIR], metavar="PATH", help="cassette files or directories (default: cassettes)")
    parser.add_argument("--tolerance", type=int, default=0, metavar="N", help="accept prompt token counts that differ by at most N (default 0)")
    parser.add_argument("--no-tokens", dest="tokens", action="store_false", help="skip the token-count check")
    parser.set_defaults(run=run)


def _mask(secret: str) -> str:
    """Enough of `secret` to find it, never enough to use it."""
    return f"{secret[:6]}…({len(secret)} characters)"


def _fields(interaction: Interaction) -> Iterator[tuple[str, str, str]]:
    """(where, header name or "", text) for everything a secret could hide in."""
    request, response = interaction["request"], interaction["response"]
    yield "request URI", "", request["uri"]
    for side, part in (("request", request), ("response", response)):
        for name, values in part["headers"].items():
            for value in values:
                yield f"{side} header {name}", name.lower(), value
        yield f"{side} body", "", decode_body(part["body"]).decode("utf-8", "replace")


def _live(value: str) -> bool:
    return bool(value.strip()) and not _PLACEHOLDER.search(value)


def find_secrets(interaction: Interaction) -> Iterator[str]:
    """A description of each key-like thing in `interaction` (secrets masked): everything the
    scrubber would have removed, and credential-shaped text anywhere."""
    request, response = interaction["request"], interaction["response"]
    named = [
        ("request", credentials_in(request["uri"], request["headers"], decode_body(request["body"]))),
        ("response", credentials_in("", response["headers"])),
    ]
    reported = set()  # a header already reported by name is not searched again
    for side, credentials in named:
        for credential in credentials:
            if _live(credential.value):
                reported.add(f"{side} {credential.kind} {credential.name}")
                yield f"{side} {credential.kind} {credential.name} holds {_mask(credential.value)}"
    for where, _, text in _fields(interaction):
        if where in reported:
            continue
        for kind, pattern in _SECRET_PATTERNS:
            for match in pattern.finditer(text):
                found = match.group(1)
                if kind == "Azure host":
                    if secret_host(found):
                        yield f"{where}: {kind} {found!r} (not the placeholder {AZURE.placeholder_host})"
                elif not _PLACEHOLDER.search(found) and not (kind == "OpenAI API key" and not re.search(r"\d", found)):
                    yield f"{where}: {kind} {_mask(found)}"


def run(args: argparse.Namespace) -> int:
    problems: list[Problem] = []
    checked = {"cassettes": 0, "interactions": 0, "token_checks": 0}
    for file in load_cassettes(find_cassettes(args.paths), args.progress):
        path = display(file.path)
        checked["cassettes"] += 1
        if file.interactions is None:
            problems.append(Problem(path, "parse", str(file.error)))
            continue
        for index, interaction in enumerate(file.interactions):
            checked["interactions"] += 1
            problems += [Problem(path, "secret", finding, index) for finding in find_secrets(interaction)]
            exchange = read_exchange(interaction, index)
            if not args.tokens or exchange.usage is None or unmeasurable(exchange) is not None:
                continue
            checked["token_checks"] += 1
            model = str(exchange.billed_model)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # an unknown model is counted with a fallback; drift shows it
                    counted = count_input_tokens(exchange, model)
            except Exception as err:  # a request shape the counter does not know: report it, check the rest
                problems.append(Problem(path, "tokens", f"the library can't count this request: {type(err).__name__}: {err}", index))
                continue
            billed = exchange.usage.input_tokens
            if abs(counted - billed) > args.tolerance:
                field = "input_tokens" if exchange.kind == RESPONSES else "prompt_tokens"
                message = f"usage.{field} is {billed} ({model}); the library counts {counted} ({counted - billed:+d})"
                problems.append(Problem(path, "tokens", message, index))
    if args.json:
        emit_json({"ok": not problems, "checked": checked, "problems": [asdict(problem) for problem in problems]})
    else:
        for problem in problems:
            where = problem.path if problem.interaction is None else f"{problem.path} #{problem.interaction}"
            print(f"{where}: {problem.check}: {problem.message}")
        print(
            f"{'ok' if not problems else f'{len(problems)} problem(s)'}: {checked['cassettes']} cassette(s), "
            f"{checked['interactions']} interaction(s), {checked['token_checks']} token count(s) checked"
        )
    return EXIT_PROBLEMS if problems else EXIT_OK
