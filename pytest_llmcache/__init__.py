"""pytest-llmcache: record real OpenAI / Azure OpenAI exchanges once, replay them offline."""
