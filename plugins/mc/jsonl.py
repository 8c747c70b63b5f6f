"""Reading local JSONL data files with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def read_text(path: Path) -> str:
    """The whole file as UTF-8 text.

    Raises
    ------
    ValueError
        Bytes that are not UTF-8: ``"<path>:<line>:<column>: not UTF-8 text (byte 0x..)"``.
    """
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ValueError(f"{path}:{line}:{col}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                         f"save the file as UTF-8") from None


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, parsed object)`` for every non-blank line of a JSONL file.

    Raises
    ------
    ValueError
        A line that is not valid JSON: ``"<path>:<line>: not valid JSON (<reason>)"``; bytes
        that are not UTF-8 (:func:`read_text`).
    """
    for lineno, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
