"""instructor as a user tests it: a response_model extracted through the openai client."""
import openai
import pytest
from pydantic import BaseModel

instructor = pytest.importorskip("instructor")


class City(BaseModel):
    name: str
    population: int


def test_extract(llm_cassette, out):
    client = instructor.from_openai(openai.OpenAI())
    city = client.chat.completions.create(model="gpt-4o-mini", response_model=City, messages=[{"role": "user", "content": "Paris"}])
    assert city.model_dump() == {"name": "Paris", "population": 1}
    out(city.model_dump())
