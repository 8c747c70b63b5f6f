"""The resume manifest: the settings the samples on disk were made with.

``<root>/manifest.json`` records, for every experiment folder, the settings that must not
change while part files exist (else a cube would mix samples of different settings), and
per (model, size) the model's source and options. The sampling engine and every producer
use this one mechanism (:func:`check`); a producer says which of its settings matter with
:meth:`hotmess.core.producer.Producer.manifest` (``docs/design.md``, "Layout and data flow").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hotmess.core import fingerprint
from hotmess.core.experiment import ConfigError, Experiment

MANIFEST_FILE = "manifest.json"
#: The settings of a sampled experiment that must not change between a run and its
#: resumption (else cells mix).
MANIFEST_KEYS = ("seed", "draws", "seeds_per_context", "chunk_questions", "task", "sampling", "backend")


def _json(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str, sort_keys=True))


def model_entries(exp: Experiment) -> dict[str, dict[str, Any]]:
    """``{"<model>/<size>": {source, revision, chat, thinking, options, sampling}}`` of every
    size the experiment runs (a rerun may add entries, not change them)."""
    return {f"{s.name}/{s.size}": {"source": s.source, "revision": s.revision, "chat": s.chat,
                                   "thinking": s.thinking, "options": s.options,
                                   "sampling": fam.sampling_config}
            for fam in exp.families for s in fam.specs}


def sampling_settings(exp: Experiment) -> dict[str, Any]:
    """The :data:`MANIFEST_KEYS` of a sampled (task x backend) experiment, as configured."""
    return {k: exp.config.get(k) for k in MANIFEST_KEYS}


def check(
    root: str | Path,
    settings: Mapping[str, Any],
    *,
    models: Mapping[str, Any] | None = None,
    has_samples: bool,
) -> None:
    """Refuse to resume into a folder sampled with different settings; record the settings.

    Parameters
    ----------
    root : path
        The experiment folder; the manifest is ``<root>/manifest.json``.
    settings : mapping
        Settings that must be equal, key by key, to the recorded ones (JSON-serialisable;
        other values are recorded as ``str``).
    models : mapping, optional
        Per-model entries (:func:`model_entries`): an entry recorded before must be equal,
        new entries are new cells and are added.
    has_samples : bool
        Whether the folder holds samples (part files, checkpoints, logs). Without samples
        (e.g. a first run that failed before sampling anything) the manifest is rewritten.

    Raises
    ------
    ConfigError
        A recorded setting differs; the message names each key with its old and new value.
    """
    root = Path(root)
    path = root / MANIFEST_FILE
    # paths resolved and the home directory written "~": the same file by another path is the
    # same setting, and the manifest carries no home path
    current = fingerprint.normalise(_json(dict(settings)))
    if models is not None:
        current["models"] = fingerprint.normalise(_json(dict(models)))
    if path.exists() and has_samples:
        previous = fingerprint.normalise(json.loads(path.read_text()))
        diff: list[str] = []
        for k in [*settings, *(k for k in previous if k not in settings and k != "models")]:
            fingerprint.changed_keys(previous.get(k), current.get(k), k, diff)
        if models is not None:
            old_models = previous.get("models", {})
            for m, spec in current["models"].items():
                if m in old_models:
                    fingerprint.changed_keys(old_models[m], spec, f"models.{m}", diff)
            current["models"] = {**old_models, **current["models"]}
        if diff:
            raise ConfigError(
                f"{root} holds samples taken with different settings ({fingerprint.summary(diff)}); "
                f"rerun with the same settings to resume, or choose another out_dir"
            )
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, indent=2, sort_keys=True))
        tmp.replace(path)
    except OSError as exc:
        from hotmess.core.cube import _write_error

        raise _write_error(path, exc, 1 << 12) from exc
