"""The process-wide hooks the plugin installs: attribute replacements that can be undone exactly,
and audit hooks (CPython can't remove one, so each is added once and stays idle when unused)."""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["add_audit_hook_once", "replace_attribute"]

_lock = threading.Lock()
_audit_hooks: set[Callable[[str, tuple[Any, ...]], None]] = set()


def replace_attribute(owner: Any, name: str, value: Any) -> Callable[[], None]:
    """Sets ``owner.name = value``; the function returned puts back exactly what was there: the
    owner's own attribute, or none when it was inherited."""
    if name in vars(owner):
        previous = vars(owner)[name]

        def undo() -> None:
            setattr(owner, name, previous)

    else:

        def undo() -> None:
            delattr(owner, name)

    setattr(owner, name, value)
    return undo


def add_audit_hook_once(hook: Callable[[str, tuple[Any, ...]], None]) -> None:
    """`sys.addaudithook(hook)`, unless this hook was added already."""
    with _lock:
        if hook not in _audit_hooks:
            sys.addaudithook(hook)
            _audit_hooks.add(hook)
