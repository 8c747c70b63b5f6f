"""Fingerprints: every part file proves what produced it.

A part file (one chunk of questions of one (model, size, budget) cell) carries in its
attributes the *fingerprint* of the run that wrote it (``docs/design.md``, "Storage"):

``settings``
    every setting that changes the draws, as readable values: the seed scheme and
    experiment seed, draws, seeds per context, chunking, the budget's cap or effort level,
    the family's sampling settings, the task's name and options and its provenance
    (``Task.info()``: data source, data-file hashes, prompt version), the backend's name
    and options, the model's source, revision, chat flag, thinking markers and options,
    and :data:`SAMPLING_CODE_VERSION`. Paths are resolved (the same file by another path is
    the same setting) and the home directory is written ``~``.
``requests``
    one SHA-256 per question over the exact requests the engine sent for it (prompt or
    messages, seeds, budget, sampling, answer prefix, option labels): a changed data file,
    few-shot pool or prompt template shows up here even when no setting changed.

:func:`diff` compares two fingerprints and returns only the changed keys, each as
``key: old -> new``, and the questions whose requests differ.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: Bump when a change to the sampling code changes the draws of the same settings (the
#: engine's request building, seeding, scoring storage). Parts of another version are
#: refused on resume, never mixed.
SAMPLING_CODE_VERSION = 1
#: Version of the fingerprint layout itself.
FINGERPRINT_VERSION = 1
#: Attribute names in a part file.
ATTR = "fingerprint"


def canonical_path(value: str) -> str:
    """``value`` resolved to an absolute path if it names an existing file or folder, with
    the home directory written ``~``; any other string unchanged."""
    if not isinstance(value, str) or not value or "\n" in value or len(value) > 4096:
        return value
    try:
        p = Path(value).expanduser()
        if not p.exists():
            return value
        resolved = str(p.resolve())
    except (OSError, ValueError):
        return value
    home = str(Path.home())
    if home not in ("/", "") and (resolved == home or resolved.startswith(home + os.sep)):
        resolved = "~" + resolved[len(home):]
    return resolved


def normalise(obj: Any) -> Any:
    """A JSON-able copy of ``obj`` with paths canonical (:func:`canonical_path`), mappings
    with string keys, tuples as lists and dataclasses as dicts."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, Mapping):
        return {str(k): normalise(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [normalise(v) for v in obj]
    if isinstance(obj, str):
        return canonical_path(obj)
    if isinstance(obj, bool | int | float) or obj is None:
        return obj
    try:  # numpy scalars
        return obj.item()
    except AttributeError:
        return str(obj)


def _sha256(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def request_digest(requests: Iterable[Any]) -> str:
    """SHA-256 over a question's requests (``SampleRequest`` objects, in order); ``metadata``
    and the question id are included, so are seeds, budget and sampling."""
    return _sha256([normalise(r) for r in requests])


def make(settings: Mapping[str, Any], requests: Mapping[str, str]) -> dict[str, Any]:
    """The fingerprint of one part: normalised ``settings`` and per-question request
    digests (``{question_id: request_digest(...)}``)."""
    return {
        "version": FINGERPRINT_VERSION,
        "sampling_code_version": SAMPLING_CODE_VERSION,
        "settings": normalise(dict(settings)),
        "requests": {str(k): str(v) for k, v in requests.items()},
    }


def dumps(fp: Mapping[str, Any]) -> str:
    """The fingerprint as the JSON text stored in a part's attributes."""
    return json.dumps(fp, sort_keys=True, separators=(",", ":"))


def loads(text: str | None) -> dict[str, Any] | None:
    """Parse a stored fingerprint (``None`` for parts written before fingerprints)."""
    if not text:
        return None
    try:
        out = json.loads(text)
    except ValueError:
        return None
    return out if isinstance(out, dict) else None


def changed_keys(old: Any, new: Any, prefix: str, out: list[str]) -> None:
    """Append ``"key.path: old -> new"`` to ``out`` for every leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(f"{path}: (unset) -> {new[key]!r}")
            elif key not in new:
                out.append(f"{path}: {old[key]!r} -> (unset)")
            else:
                changed_keys(old[key], new[key], path, out)
    elif old != new:
        out.append(f"{prefix}: {old!r} -> {new!r}")


def diff(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """The differences between a stored fingerprint and the current one, changed keys only.

    Returns
    -------
    list of str
        ``"settings.sampling.temperature: 1.0 -> 0.7"``-style lines; then one line naming
        up to five questions whose requests differ while no setting does (data or prompt
        changed); ``["written before fingerprints (hotmess 0.1)"]`` for ``old=None``.
    """
    if old is None:
        return ["written before fingerprints (hotmess 0.1)"]
    out: list[str] = []
    for key in ("sampling_code_version", "version"):
        if old.get(key) != new.get(key):
            out.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    changed_keys(old.get("settings", {}), new.get("settings", {}), "settings", out)
    old_req, new_req = old.get("requests", {}), new.get("requests", {})
    if set(old_req) != set(new_req):
        gone = sorted(set(old_req) - set(new_req))[:5]
        added = sorted(set(new_req) - set(old_req))[:5]
        out.append(f"questions of the chunk changed (only before: {gone}; only now: {added})")
    else:
        changed = sorted(q for q in new_req if old_req[q] != new_req[q])
        if changed:
            more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
            out.append(f"requests differ for question(s) {changed[:5]}{more} "
                       f"(data files, few-shot pool or prompt template changed)")
    return out


def summary(lines: Sequence[str], limit: int = 6) -> str:
    """``lines`` joined for a one-line message (at most ``limit``, then a count)."""
    shown = list(lines[:limit])
    if len(lines) > limit:
        shown.append(f"... {len(lines) - limit} more")
    return "; ".join(shown)
