"""Is any piece of a secret in what a program said? For the no-leak tests (docs/security.md).

A leak is any substring of ``FRAGMENT`` or more characters of the secret, in the text as
written or in the strings of its JSON log lines (JSON escapes quotes, backslashes and
non-ASCII characters, which would hide a fragment from a plain search).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

FRAGMENT = 4
_ROOT = Path(__file__).resolve().parents[2]

# Passwords that broke URL parsing or quoting somewhere, and ones that look like other
# parts of a URL. None shares a FRAGMENT-long piece with the project's source code.
HOSTILE_PASSWORDS = (
    "Xqvm#7z/Kp?w@Jv",  # urllib: "Port could not be cast to integer value as 'Xqvm'"
    "Rk9T/Tm@@Yb??Hc##",
    "Qz%41Wx%zzVc%25",  # percent escapes, valid and not
    "Jw::Lq::Np@:Zx",
    "Ug\"Kz'Mx\\Py`Bn",  # quotes and a backslash
    "Vh Ws  Yq Dj ",  # spaces
    "Gq\x07Wv\x1bNz",  # control characters: SCRAM (SASLprep) refuses them
    "Ïmø€Ğç∂Ωé✓",  # non-ASCII
    "Ab🔑Cd🔑Ef",  # 4-byte UTF-8, unassigned in SASLprep's Unicode 3.2: SCRAM refuses it
    "58213",  # looks like a port
    "Kq9x@[::1]:6111/Zzdb?Wq=Yv#Hv",  # looks like an authority and a query
)
HOSTILE_KEY = 'Zk#Pw@Hv%Qm/Ru?Xb"Tj'


@cache
def source_text() -> str:
    """The project's own code: the text every message of ours is made from."""
    files = [*(_ROOT / "handler").rglob("*.py"), *(_ROOT / "drain").rglob("*.py")]
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(files))


def fragments(secret: str) -> set[str]:
    return {secret[i : i + FRAGMENT] for i in range(len(secret) - FRAGMENT + 1)}


def collides_with_source(secret: str, *public: str) -> bool:
    """True if a fragment could appear for an innocent reason (our message texts, the
    host, user or database name): such secrets cannot be tested this way."""
    haystack = source_text() + "\n".join(public)
    return any(piece in haystack for piece in fragments(secret))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _decoded(text: str) -> str:
    out = []
    for line in text.splitlines():
        try:
            out.extend(_strings(json.loads(line)))
        except ValueError:
            continue
    return "\n".join(out)


def leaked(secrets: Iterable[str], *texts: str) -> list[str]:
    """The fragments of ``secrets`` found in ``texts``; [] when nothing leaked."""
    haystack = "\n".join(texts)
    haystack += "\n" + _decoded(haystack)
    return sorted({p for s in secrets for p in fragments(s) if p in haystack})
