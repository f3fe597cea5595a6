"""Lone UTF-16 surrogates: text that JSON can carry as an escape but no UTF-8 encoder will write.

Python's ``json`` reads ``"\\ud800"`` into a str holding a lone surrogate; the
store and the relay's orjson then refuse to write it. Entries look for one
before anything is stored.
"""

from __future__ import annotations

from typing import Any

import orjson


def lone_surrogate_at(value: Any, *, where: str = "") -> str | None:
    """The path of the first string (or key) holding a lone surrogate, or None. Iterative: no recursion."""
    try:
        # orjson writes UTF-8 and refuses a lone surrogate: a value it writes holds none, and that is
        # nearly every value, found at C speed. Anything it cannot write (a Decimal, an int beyond 64 bits,
        # a surrogate) is walked below, which alone says where.
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        return None
    except (orjson.JSONEncodeError, TypeError):
        pass
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if not _is_text(item):
                return path or "(root)"
        elif isinstance(item, dict):
            for key, child in item.items():
                shown = _escaped(key) if isinstance(key, str) else str(key)
                child_path = f"{path}.{shown}" if path else shown
                if isinstance(key, str) and not _is_text(key):
                    return child_path
                stack.append((child, child_path))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
    return None


def _escaped(key: str) -> str:
    """A key as a path shows it: a lone surrogate as its escape (\\ud800), so the reason itself is text
    that can be written out (an error answer holding the raw key could not be encoded as UTF-8)."""
    return key if _is_text(key) else key.encode("utf-8", "backslashreplace").decode("utf-8")


def _is_text(string: str) -> bool:
    try:
        string.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
