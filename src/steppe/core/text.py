"""Text that may reach a process, a path or the store: no NUL character, no lone surrogate.

Both break at the edge of the system (a NUL ends a C string; a lone surrogate cannot be encoded
as UTF-8), so the API's models, the proposal checks and the executor all refuse them with this
one rule.

>>> text_problem("train.py") is None
True
>>> text_problem("a\\x00b")
'must not contain a NUL character (\\\\u0000, at character 1)'
"""

from __future__ import annotations

import re

UNSAFE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """What is wrong with ``value`` (its first NUL or lone surrogate), or None when it is safe."""
    bad = UNSAFE.search(value)
    if bad is None:
        return None
    if bad.group() == "\x00":
        return f"must not contain a NUL character (\\u0000, at character {bad.start()})"
    return f"must be valid Unicode text: a lone surrogate (\\u{ord(bad.group()):04x}) at character {bad.start()}"
