"""Key groups: TMI's key patterns as `name=glob`, matched here on the client exactly as Redis'
MATCH matches them, so that one SCAN pass can classify every key into the first group whose
glob matches (instead of one SCAN ... MATCH pass per group).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

UNCLASSIFIED = "unclassified"  # keys that match no group; redis_exporter's name for them


def glob_regex(pattern: str) -> re.Pattern[bytes]:
    """A regex that matches exactly what Redis' MATCH (stringmatchlen) matches: `*`, `?`,
    `[abc]`, `[^a-z]`, and `\\` escapes; an unterminated `[` ends at the pattern's end."""
    raw = pattern.encode()
    out: list[bytes] = []
    i = 0
    while i < len(raw):
        c = raw[i : i + 1]
        if c == b"*":
            out.append(b".*")
        elif c == b"?":
            out.append(b".")
        elif c == b"\\" and i + 1 < len(raw):
            i += 1
            out.append(re.escape(raw[i : i + 1]))
        elif c == b"[":
            i += 1
            negate = raw[i : i + 1] == b"^"
            if negate:
                i += 1
            items: list[bytes] = []
            while i < len(raw) and raw[i : i + 1] != b"]":
                if raw[i : i + 1] == b"\\" and i + 1 < len(raw):
                    i += 1
                    items.append(re.escape(raw[i : i + 1]))
                elif raw[i + 1 : i + 2] == b"-" and i + 2 < len(raw):
                    lo, hi = sorted((raw[i], raw[i + 2]))
                    items.append(re.escape(bytes([lo])) + b"-" + re.escape(bytes([hi])))
                    i += 2
                else:
                    items.append(re.escape(raw[i : i + 1]))
                i += 1
            if items:
                out.append(b"[" + (b"^" if negate else b"") + b"".join(items) + b"]")
            else:
                out.append(b"(?s:.)" if negate else b"(?!)")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile(b"".join(out), re.DOTALL)


@dataclass(frozen=True)
class KeyGroup:
    """A named glob; `regex` matches what the glob matches on the server."""

    name: str
    pattern: str
    regex: re.Pattern[bytes]


def parse_key_groups(items: Sequence[str]) -> list[KeyGroup]:
    """`name=glob` items (validated by the settings model) into groups, in order."""
    groups = []
    for item in items:
        name, _, pattern = item.partition("=")
        groups.append(KeyGroup(name, pattern, glob_regex(pattern)))
    return groups


def classify(key: bytes, groups: Sequence[KeyGroup]) -> str:
    """The first group whose glob matches the key: one key is counted once."""
    for group in groups:
        if group.regex.fullmatch(key):
            return group.name
    return UNCLASSIFIED
