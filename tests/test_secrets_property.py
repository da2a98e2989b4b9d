"""Credentials the scrubber knows only by shape, encoded forms of a live key, and foreign cassettes
carried over: property tests over header names, query parameters, encodings and split points,
plus real recordings through the openai SDK against the loopback server."""
from __future__ import annotations

import base64
import gzip
import json
import os
import re
from pathlib import Path
from unittest import mock
from urllib.parse import quote

import httpx2
import openai
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fakeopenai import Reply
from pytest_llmcache import cassette as cassette_file
from pytest_llmcache._commands.verify import find_secrets
from pytest_llmcache.errors import SecretLeakError
from pytest_llmcache.importer import import_cassette
from pytest_llmcache.recorder import LLMCassette
from pytest_llmcache.bodies import parse_json
from pytest_llmcache.scrubbing import NOT_CREDENTIALS, REDACTED, Scrubber, _is_key_like_field, is_credential_name
from test_leaks_property import every_log_record

# Examples that record through a server are slow: no shrinking (the failing example is printed as found).
LIVE_PHASES = (Phase.explicit, Phase.reuse, Phase.generate)
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
# A key that spells a placeholder word is taken for one by `llmcache verify`: real keys almost never do.
keys = st.builds(lambda body: "sk-" + body, st.text(alphabet=ALPHABET, min_size=20, max_size=48)).filter(
    lambda key: key.strip("-_") == key and not re.search("(?i)placeholder|redacted|filtered|dummy|fake|example|test|xxx", key)
)
WORDS = ("auth", "key", "token", "secret", "signature", "password", "cookie", "session", "credential", "Auth", "KEY", "Token")
name_part = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=0, max_size=8)
# Header names of gateways and proxies, and any name built around a credential word.
GATEWAY_HEADERS = ("Helicone-Auth", "cf-aig-authorization", "X-Auth-Token", "x-api-key", "x-goog-api-key", "Proxy-Authorization",
                   "Ocp-Apim-Subscription-Key", "X-Portkey-Api-Key", "X-Session-Token")
header_names = st.one_of(
    st.sampled_from(GATEWAY_HEADERS),
    st.builds(lambda a, w, b: "-".join(part for part in ("x", a, w, b) if part), name_part, st.sampled_from(WORDS), name_part),
).filter(lambda name: name.lower() not in NOT_CREDENTIALS and "ratelimit" not in name.lower())
QUERY_PARAMS = ("code", "sig", "token", "key", "signature", "api_key", "access_token", "X-Amz-Signature", "apiKey", "auth", "password")
query_names = st.one_of(st.sampled_from(QUERY_PARAMS), st.builds(lambda a, w: a + w, name_part, st.sampled_from(WORDS))).filter(
    lambda name: name.lower() not in NOT_CREDENTIALS
)


def raw_interaction(uri: str, headers: dict[str, str], body: bytes, response: dict, response_headers: dict[str, str] | None = None) -> dict:
    """An interaction as a plain vcrpy cassette keeps it: nothing scrubbed."""
    return {
        "request": {"method": "POST", "uri": uri, "headers": {name: [value] for name, value in headers.items()}, "body": body.decode()},
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {name: [value] for name, value in (response_headers or {"content-type": "application/json"}).items()},
            "body": {"string": json.dumps(response)},
        },
    }


# -- 2. credentials known only by shape ------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(key=keys, header=header_names, param=query_names, field=st.sampled_from(["api_key", "password", "client_secret", "access_token"]))
def test_credentials_by_shape_are_scrubbed_and_verify_flags_what_the_scrubber_removes(key, header, param, field):
    uri = f"https://gateway.example.org/v1/chat/completions?{quote(param)}={quote(key)}&api-version=1"
    body = json.dumps({"model": "m", "max_tokens": 5, "metadata": {field: key + "b"}}).encode()
    raw = raw_interaction(uri, {header: f"Bearer {key}a", "content-type": "application/json"}, body, {"ok": True})
    assert is_credential_name(header) and is_credential_name(param)
    flagged = list(find_secrets(raw))
    for name in (header.lower(), param.lower(), repr(field)):
        assert any(f" {name} holds " in finding for finding in flagged), (name, flagged)
    stored = Scrubber().stored_interaction(raw)
    text = cassette_file.dumps([stored])
    for secret in (key, key + "a", key + "b"):
        assert secret not in text
    assert list(find_secrets(stored)) == []
    assert json.loads(cassette_file.request_body(stored))["max_tokens"] == 5


@pytest.mark.parametrize(
    "name",
    ["x-ratelimit-remaining-tokens", "x-ratelimit-limit-tokens", "anthropic-ratelimit-tokens-remaining",
     "anthropic-ratelimit-input-tokens-reset", "azureml-model-session", "max_tokens", "max_completion_tokens", "prompt_cache_key"],
)
def test_the_allow_list_keeps_usage_and_rate_limit_names(name):
    assert not is_credential_name(name)
    stored = Scrubber().response({"code": 200}, {name: ["1234567890"], "content-type": ["application/json"]}, b'{"max_tokens": 7}')
    assert stored["headers"][name] == ["1234567890"] and stored["body"]["json"] == {"max_tokens": 7}


def test_a_user_adds_credential_names_through_the_scrubber():
    scrubber = Scrubber(extra_headers=["X-Tenant"], extra_query_params=["ticket"])
    stored = scrubber.request("POST", "https://gw.example.org/v1/embeddings?ticket=abcdefgh12345", {"X-Tenant": "tenant-secret-42"}, b"{}")
    assert stored["headers"]["x-tenant"] == [REDACTED] and stored["uri"].endswith("ticket=<redacted>")
    assert scrubber.mask_text("tenant-secret-42 abcdefgh12345") == f"{REDACTED} {REDACTED}"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], phases=LIVE_PHASES)
@given(key=keys, header=header_names, param=query_names, password=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=8, max_size=20))
def test_gateway_credentials_never_reach_a_cassette_or_a_log_record(server, tmp_path_factory, key, header, param, password):
    """Real SDK, real loopback server: a gateway header, a credential query parameter and a proxy's
    userinfo in the base URL; nothing of them in the cassette or any log record (vcrpy, httpx2)."""
    path = tmp_path_factory.mktemp("gateway") / "c.yaml"
    base_url = server.base_url.replace("http://", f"http://proxy-user:{password}@")
    sdk = openai.OpenAI(base_url=base_url, api_key="sk-other-credential-0000", default_headers={header: key + "h"},
                        default_query={param: key + "q"}, max_retries=0)
    # httpx turns the userinfo into Basic auth, which the server refuses: the 401 is recorded all the same.
    with every_log_record() as logs, LLMCassette.use(path=path, record_mode="once", test_id="t") as cassette, pytest.raises(openai.AuthenticationError):
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    cassette.save()
    written = path.read_text()
    for secret in (key + "h", key + "q", password):
        assert secret not in written
        assert not [line for line in logs.lines if secret in line]
    assert list(find_secrets(cassette_file.load(path)[0])) == []


# -- 3. encoded forms ------------------------------------------------------------------------------


def _base64_in_blob(key: str, offset: int, urlsafe: bool) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(b"x" * offset + key.encode() + b" and more bytes").decode()


def _json_escaped(key: str, mask: list[bool]) -> str:
    return "".join(f"\\u{ord(char):04x}" if escape else char for char, escape in zip(key, mask * len(key), strict=False))


def _url_encoded(key: str, mask: list[bool]) -> str:
    return "".join(f"%{ord(char):02X}" if escape else char for char, escape in zip(key, mask * len(key), strict=False))


def _stream(parts: list[str]) -> bytes:
    events = [{"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": part}}]} for part in parts]
    return b"".join(f"data: {json.dumps(event)}\n\n".encode() for event in events) + b"data: [DONE]\n\n"


ENCODINGS = ("base64", "base64-urlsafe", "json-escaped", "url-encoded", "split-stream", "gzip-request", "gzip-upload", "gzip-gzip-stream")


@settings(max_examples=400, deadline=None)
@given(
    key=keys,
    encoding=st.sampled_from(ENCODINGS),
    offset=st.integers(0, 5),
    split=st.integers(1, 19),
    mask=st.lists(st.booleans(), min_size=1, max_size=5).filter(any),
)
def test_the_final_check_finds_a_live_key_in_any_encoding(tmp_path_factory, key, encoding, offset, split, mask):
    """The scrubber has learned `key` (from the environment) but can't mask it in these forms: the
    write is refused, nothing is written, and the message names the source, never the value."""
    scrubber = Scrubber(secrets={key: "$OPENAI_API_KEY"})
    request_body, request_headers = b'{"model": "m"}', {"content-type": "application/json"}
    response_body, response_headers = b'{"ok": true}', {"content-type": "application/json"}
    if encoding.startswith("base64"):
        response_body = json.dumps({"blob": _base64_in_blob(key, offset, encoding.endswith("urlsafe"))}).encode()
    elif encoding == "json-escaped":
        response_body = ('{"echo": "' + _json_escaped(key, mask) + '"}').encode()
    elif encoding == "url-encoded":
        response_body = f"next=https://example.org/?k={_url_encoded(key, mask)}".encode()
        response_headers = {"content-type": "text/plain"}
    elif encoding == "split-stream":
        response_body, response_headers = _stream(["your key: ", key[:split], key[split:], "."]), {"content-type": "text/event-stream"}
    elif encoding == "gzip-request":
        request_body, request_headers = gzip.compress(b'{"note": "' + key.encode() + b'"}'), {"content-encoding": "gzip"}
    elif encoding == "gzip-upload":
        upload = gzip.compress(("x" * offset + key).encode())
        request_body = b"--b\r\nContent-Disposition: form-data; name=file; filename=a.jsonl.gz\r\n\r\n" + upload + b"\r\n--b--\r\n"
        request_headers = {"content-type": "multipart/form-data; boundary=b"}
    else:  # a stream compressed twice, as a content-encoding of "gzip, gzip" says, split across events
        stream = _stream([key[:split], key[split:]])
        response_body = gzip.compress(gzip.compress(stream))
        response_headers = {"content-type": "text/event-stream", "content-encoding": "gzip, gzip"}
    interaction = {
        "request": scrubber.request("POST", "https://api.openai.com/v1/chat/completions", request_headers, request_body),
        "response": scrubber.response({"code": 200, "message": "OK"}, {k: [v] for k, v in response_headers.items()}, response_body),
    }
    path = tmp_path_factory.mktemp("encoded") / "c.yaml"
    with pytest.raises(SecretLeakError, match=r"\$OPENAI_API_KEY") as error:
        cassette_file.save(path, [interaction], check=lambda text: scrubber.check(text, path, [interaction]))
    assert key not in str(error.value) and not path.exists()


def test_a_doubled_content_encoding_is_undone_and_its_echo_masked():
    scrubber = Scrubber(secrets={"sk-echoed-0123456789abcdef": "$OPENAI_API_KEY"})
    body = gzip.compress(gzip.compress(b'{"echo": "sk-echoed-0123456789abcdef"}'))
    stored = scrubber.response({"code": 200}, {"content-encoding": ["gzip, gzip"], "content-type": ["application/json"]}, body)
    assert stored["body"] == {"json": {"echo": REDACTED}, "layout": "spaced"} and "content-encoding" not in stored["headers"]


@pytest.mark.parametrize("masked", ["sk-proj-****cdef", "sk-proj-abcd...cdef", "sk-proj-********************cdef"])
def test_a_partially_masked_key_is_no_secret_but_the_full_echo_is(tmp_path, masked):
    key = "sk-proj-0123456789abcdef0123456789abcdef"
    scrubber = Scrubber(secrets={key: "$OPENAI_API_KEY"})
    error_body = json.dumps({"error": {"message": f"Incorrect API key provided: {masked}.", "code": "invalid_api_key"}}).encode()
    interaction = {"request": scrubber.request("POST", "https://api.openai.com/v1/chat/completions", {}, b"{}"),
                   "response": scrubber.response({"code": 401}, {"content-type": ["application/json"]}, error_body)}
    scrubber.check(cassette_file.dumps([interaction]), tmp_path / "c.yaml", [interaction])  # no error
    echoed = dict(interaction, response={**interaction["response"], "body": {"string": base64.b64encode(key.encode()).decode()}})
    with pytest.raises(SecretLeakError):
        scrubber.check(cassette_file.dumps([echoed]), tmp_path / "c.yaml", [echoed])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], phases=LIVE_PHASES)
@given(key=keys, split=st.integers(1, 19))
def test_a_key_split_across_two_streamed_events_is_refused(server, tmp_path_factory, key, split):
    """Real SDK, real stream: the server streams the key back in two deltas; the write is refused."""
    path = tmp_path_factory.mktemp("stream") / "c.yaml"
    server.script(Reply.raw(200, _stream([key[:split], key[split:]]), {"content-type": "text/event-stream"}))
    with mock.patch.dict(os.environ, {"OPENAI_API_KEY": key}):
        with LLMCassette.use(path=path, record_mode="once", test_id="t") as cassette:
            chunks = openai.OpenAI(base_url=server.base_url, max_retries=0).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == key
        with pytest.raises(SecretLeakError, match=r"\$OPENAI_API_KEY.*in the response body of interaction #0"):
            cassette.save()
    assert not path.exists()


# -- 4. foreign cassettes carried over -------------------------------------------------------------

PLACES = ("authorization", "set-cookie", "api_key query", "echo in first response")


def _foreign_cassette(path: Path, key: str, places: set[str]) -> None:
    uri = "https://api.openai.com/v1/chat/completions" + ("?api_key=" + key if "api_key query" in places else "")
    headers = {"Content-Type": "application/json"}
    if "authorization" in places:
        headers["Authorization"] = f"Bearer {key}"
    first = raw_interaction(uri, headers, b'{"model":"m","messages":[{"role":"user","content":"old"}]}',
                            {"id": "1", "note": f"you sent {key}" if "echo in first response" in places else "ok", "choices": []},
                            {"Content-Type": "application/json", **({"Set-Cookie": f"__cf_bm={key}; path=/"} if "set-cookie" in places else {})})
    path.write_text(json.dumps({"interactions": [first], "version": 1}))  # JSON is YAML: vcrpy's serializer either way


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], phases=LIVE_PHASES)
@given(key=keys, places=st.sets(st.sampled_from(PLACES[:3]), min_size=1), echo=st.booleans(), mode=st.sampled_from(["new_episodes", "all"]))
def test_old_interactions_of_a_foreign_cassette_are_scrubbed_when_it_is_saved_again(server, tmp_path_factory, key, places, echo, mode):
    path = tmp_path_factory.mktemp("foreign") / "c.yaml"
    _foreign_cassette(path, key, places | ({PLACES[3]} if echo else set()))
    with LLMCassette.use(path=path, record_mode=mode, test_id="t") as cassette:
        openai.OpenAI(base_url=server.base_url, api_key="sk-new-credential-0000", max_retries=0).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "new"}]
        )
    cassette.save()
    written = path.read_text()
    assert key not in written
    interactions = cassette_file.load(path)
    assert len(interactions) == 2 and all(list(find_secrets(interaction)) == [] for interaction in interactions)


def test_import_learns_every_request_before_scrubbing_any_response(tmp_path):
    """A key echoed by the first response but sent only by the second request is masked, like the
    same echo in a later response."""
    key = "sk-proj-echoedbeforeseen0123456789"
    first = raw_interaction("https://api.openai.com/v1/chat/completions", {}, b'{"model":"m"}', {"note": f"echo {key}"})
    second = raw_interaction("https://api.openai.com/v1/chat/completions", {"Authorization": f"Bearer {key}"}, b'{"model":"n"}', {"note": f"echo {key}"})
    source = tmp_path / "vcr.yaml"
    source.write_text(json.dumps({"interactions": [first, second], "version": 1}))
    result = import_cassette(source, tmp_path / "out.yaml", Scrubber())
    assert result.status == "new"
    assert [item["response"]["body"]["json"]["note"] for item in cassette_file.load(tmp_path / "out.yaml")] == [f"echo {REDACTED}"] * 2


def test_a_refused_import_says_to_fix_the_source_not_to_record_again(tmp_path):
    key = "sk-proj-gzippedinthesource0123456789"
    interaction = raw_interaction("https://api.openai.com/v1/chat/completions", {"Authorization": f"Bearer {key}"}, b"{}", {})
    interaction["response"]["body"] = {"string": base64.b64encode(f"user:{key}".encode()).decode()}
    source = tmp_path / "vcr.yaml"
    source.write_text(json.dumps({"interactions": [interaction], "version": 1}))
    with pytest.raises(SecretLeakError) as error:
        import_cassette(source, tmp_path / "out.yaml", Scrubber())
    message = str(error.value)
    assert "record again" not in message and "import again" in message and "source cassette" in message
    assert key not in message and not (tmp_path / "out.yaml").exists()


def test_verify_flags_a_foreign_cassette_and_passes_it_once_imported(tmp_path):
    key = "sk-proj-verifyforeign0123456789abc"
    source = tmp_path / "vcr.yaml"
    _foreign_cassette(source, key, set(PLACES))
    [raw] = cassette_file.load(source)
    assert {finding.split(" holds ")[0] for finding in find_secrets(raw) if " holds " in finding} >= {
        "request header authorization", "request query parameter api_key", "response header set-cookie"}
    import_cassette(source, tmp_path / "out.yaml", Scrubber())
    assert all(list(find_secrets(item)) == [] for item in cassette_file.load(tmp_path / "out.yaml"))


def test_an_interaction_this_plugin_wrote_is_scrubbed_again_when_it_holds_a_value_learned_since(server, tmp_path):
    """A cassette written before the shape rules kept a gateway header's value: when the same key
    is in use again, `new_episodes` masks it in the old interaction instead of writing it back."""
    key = "helicone-live-key-0123456789abcdef"
    path = tmp_path / "c.yaml"
    old = raw_interaction("https://api.openai.test/v1/chat/completions", {"helicone-auth": f"Bearer {key}"}, b'{"model":"m"}', {"ok": 1})
    old["request"]["body"] = {"json": {"model": "m"}, "layout": "compact"}
    old["response"]["body"] = {"json": {"ok": 1}, "layout": "compact"}
    cassette_file.save(path, [old])  # as an older version wrote it: our format, index comments and all
    assert key in path.read_text() and cassette_file.load_entries(path)[0].text is not None
    with LLMCassette.use(path=path, record_mode="new_episodes", test_id="t") as cassette:
        openai.OpenAI(base_url=server.base_url, api_key="sk-new-credential-0000", default_headers={"Helicone-Auth": f"Bearer {key}"},
                      max_retries=0).chat.completions.create(model="m", messages=[{"role": "user", "content": "new"}])
    cassette.save()
    assert key not in path.read_text() and len(cassette_file.load(path)) == 2


# A JSON body field holding a credential, by its name (the rule is `_is_key_like_field`): any
# length around the word, at any depth, and however the body spells the name (JSON lets a client
# write any of its letters as a \\u escape).
FIELD_WORDS = ("api_key", "apiKey", "secret", "password", "credential", "access_token", "auth-token", "Passwd", "key", "token")
field_names = st.builds(lambda a, w, b: a + w + b, st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", max_size=80), st.sampled_from(FIELD_WORDS),
                        st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", max_size=80)).filter(_is_key_like_field)
SPELLINGS = ("plain", "compact", "indent", "ascii", "escaped name")


def spelled(document: dict, name: str, spelling: str) -> bytes:
    """`document` serialised as a client might; "escaped name": each letter of `name` as \\uXXXX."""
    if spelling == "escaped name":
        text = json.dumps(document, separators=(",", ":"))
        return text.replace(json.dumps(name), '"' + "".join(f"\\u{ord(char):04x}" for char in name) + '"').encode()
    options = {"plain": {}, "compact": {"separators": (",", ":")}, "indent": {"indent": 2}, "ascii": {"ensure_ascii": True}}[spelling]
    return json.dumps(document, **options).encode()


@settings(max_examples=300, deadline=None)
@given(key=keys, name=field_names, depth=st.integers(0, 4), spelling=st.sampled_from(SPELLINGS))
def test_a_credential_in_a_body_field_is_learned_however_the_body_spells_its_name(key, name, depth, spelling):
    """Recorded (`Scrubber.request`), the value of a key-like body field is learned and stored
    masked; replayed (`masked_request`), it is masked before keying. A search of the body's bytes
    missed a name longer than 60 characters around its word, or one written with escapes: the
    key was then stored in the cassette."""
    holder: dict = {name: key, "note": "tokens of the prompt"}
    for level in range(depth):
        holder = {"messages": [{"role": "user", "content": "hi"}, holder]} if level % 2 else {"metadata": holder}
    body = spelled({"model": "gpt-4o-mini", **holder}, name, spelling)
    uri = "https://api.openai.com/v1/chat/completions"
    recording = Scrubber()
    stored = recording.request("POST", uri, {"content-type": "application/json"}, body)
    assert key in recording.secrets
    text = cassette_file.dumps([{"request": stored, "response": recording.response({"code": 200}, {}, b"{}")}])
    assert key not in text
    masked = Scrubber().masked_request(uri, {}, body)
    assert key not in masked.body.decode("unicode_escape") and masked.document == parse_json(masked.body)


@pytest.mark.parametrize("extra_depth", [-1, 1, 50])
def test_a_credential_in_a_body_field_deeper_than_parse_json_reads_is_learned(extra_depth):
    """parse_json gives up past MAX_JSON_DEPTH (the body is then stored as text): the field is
    still found, by reading the body with json itself, and masked in what is stored and keyed."""
    from pytest_llmcache.bodies import MAX_JSON_DEPTH

    key = "sk-deep-credential-0123456789"
    document: dict = {"api_key": key}
    for _ in range(MAX_JSON_DEPTH + extra_depth):
        document = {"wrapped": document}
    body = json.dumps(document).encode()
    uri = "https://api.openai.com/v1/chat/completions"
    recording = Scrubber()
    stored = recording.request("POST", uri, {"content-type": "application/json"}, body)
    assert key in recording.secrets and key not in json.dumps(stored)
    assert key.encode() not in Scrubber().masked_request(uri, {}, body).body


def test_a_credential_header_sent_twice_has_each_of_its_keys_masked(server, tmp_path):
    """httpx reads a header sent twice as one value, joined with ", ": each key in it is learned
    on its own, so the second key echoed back in the response is masked too (it was stored)."""
    first, second = "sk-first-credential-0123456789", "sk-second-credential-0123456789"
    path = tmp_path / "c.yaml"
    with LLMCassette.use(path=path, record_mode="once", test_id="t") as cassette, httpx2.Client() as client:
        headers = [("authorization", f"Bearer {first}"), ("authorization", f"Bearer {second}"), ("content-type", "application/json")]
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"say {second}"}]}
        response = client.post(f"{server.base_url}/chat/completions", headers=headers, content=json.dumps(body))
    assert second in response.text  # the server echoed it
    cassette.save()
    text = path.read_text()
    assert first not in text and second not in text and REDACTED in text
