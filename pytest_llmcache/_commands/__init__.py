"""The subcommands of ``llmcache`` (see `pytest_llmcache.cli`), one module each."""
