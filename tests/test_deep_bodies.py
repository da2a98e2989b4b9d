"""A cassette the plugin wrote is readable: JSON bodies nested deeper than bodies.MAX_JSON_DEPTH
are stored as text, so recording, replay and every CLI command read them at any stack depth."""
from __future__ import annotations

import yaml

from pytest_llmcache.bodies import MAX_JSON_DEPTH

DEEP = '''
import openai, pytest

def nested(depth):
    document = 1
    for _ in range(depth - 1):  # the request body itself is one more level
        document = {"a": document}
    return document

@pytest.mark.parametrize("depth", [MAX_DEPTH, MAX_DEPTH + 1, 700])
def test_deep(llm_cassette, depth):
    reply = openai.OpenAI(max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"depth {depth}"}], extra_body={"x": nested(depth)}
    )
    assert reply.choices[0].message.content == f"echo: depth {depth}"
'''


def test_bodies_at_the_depth_limit_and_far_past_it_record_replay_and_read_everywhere(suite, cli):
    suite.write(DEEP.replace("MAX_DEPTH", str(MAX_JSON_DEPTH)))
    suite.live()
    suite.run("--llm-record-mode=once").assert_outcomes(passed=3)
    folder = suite.cassettes / "test_x"
    stored = {}
    for depth in (MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 700):
        body = yaml.safe_load((folder / f"test_deep[{depth}].yaml").read_text())["interactions"][0]["request"]["body"]
        stored[depth] = next(iter(body))
    assert stored == {MAX_JSON_DEPTH: "json", MAX_JSON_DEPTH + 1: "string", 700: "string"}
    suite.offline()
    suite.run().assert_outcomes(passed=3)
    runs = [("list", folder), ("stats", folder), ("verify", folder), ("tokens", folder)]
    runs += [("show", path) for path in sorted(folder.glob("*.yaml"))]
    for command, target in runs:
        code, out, err = cli(command, target)
        assert "Traceback" not in out + err and "RecursionError" not in out + err, command
        assert code in (0, 1), (command, err)
