"""TinyTroupe's LLM client layer, rebuilt on the openai 3.x SDK."""
