"""The ``answers_csv`` producer: answers another harness wrote, as a hotmess cube.

A producer makes an experiment's cube without hotmess's backend x task sampling loop. This
one imports a CSV of multiple-choice answers (one row per model, size, question and draw)
so that hotmess's metrics and figures apply to runs made elsewhere::

    model,size,question,draw,answer,target
    calc,careful,add-0000,0,B,B

``answer`` and ``target`` are option letters (``A``..); an empty ``answer`` is an
unparseable one (scored as the uniform vector, ``format_error = 1``, the paper's rule).
Each (model, size) becomes one part file of the store, so a rerun skips what is done; the
manifest refuses a rerun on a different file.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import xarray as xr

from hotmess.core.producer import Producer

COLUMNS = ("model", "size", "question", "draw", "answer", "target")


class AnswersCSV(Producer):
    """Import a CSV of per-draw option letters into a ``probabilities`` cube.

    Parameters
    ----------
    csv : str
        Path of the CSV (columns :data:`COLUMNS`).
    n_options : int
        Options per question (letters ``A`` .. the ``n_options``-th).

    Raises
    ------
    ValueError
        A missing file or column, or a bad row (the message names the file and line).
    """

    name = "answers_csv"
    outcome_kind = "probabilities"

    def __init__(self, csv: str, n_options: int = 4) -> None:
        self.path = Path(csv)
        self.labels = [chr(ord("A") + i) for i in range(int(n_options))]

    def _rows(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            raise ValueError(f"producer answers_csv: no file {self.path}")
        with self.path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{self.path}: missing column(s) {missing}")
            rows = list(reader)
        for i, r in enumerate(rows, start=2):
            for key in ("answer", "target"):
                if r[key] and r[key] not in self.labels:
                    raise ValueError(f"{self.path}, line {i}: {key} {r[key]!r} is not one of {self.labels}")
            if not r["target"] or not r["draw"].isdigit():
                raise ValueError(f"{self.path}, line {i}: needs a target letter and a draw number")
        return rows

    def manifest(self, exp):
        return {"csv_sha256": hashlib.sha256(self.path.read_bytes()).hexdigest(), "options": self.labels}

    def produce(self, exp, store):
        rows = self._rows()
        questions = list(dict.fromkeys(r["question"] for r in rows))
        targets = {r["question"]: self.labels.index(r["target"]) for r in rows}
        draws = 1 + max(int(r["draw"]) for r in rows)
        cells = list(dict.fromkeys((r["model"], r["size"]) for r in rows))
        for model, size in cells:
            if not store.has_named_part(f"{model}__{size}"):
                mine = [r for r in rows if (r["model"], r["size"]) == (model, size)]
                store.write_named_part(self._part(mine, questions, draws, model, size), f"{model}__{size}")
        parts = [store.read_named_part(f"{m}__{s}") for m, s in cells]
        cube = xr.merge([p.expand_dims(model=[p.model.item()], size=[p["size"].item()]) for p in parts],
                        join="outer", compat="no_conflicts", combine_attrs="drop")
        cube = cube.expand_dims(budget=["none"]).transpose("model", "size", "budget", "question", "draw", "option")
        return cube.assign_coords(
            target=("question", [targets[q] for q in questions]),
            params=(("model", "size"), np.full((cube.sizes["model"], cube.sizes["size"]), np.nan)),
            budget_tokens=("budget", [np.nan]), budget_effort=("budget", [""]),
        )

    def _part(self, rows, questions, draws, model, size) -> xr.Dataset:
        k = len(self.labels)
        outcome = np.full((len(questions), draws, k), np.nan)
        format_error = np.full((len(questions), draws), np.nan)
        for r in rows:
            qi, d = questions.index(r["question"]), int(r["draw"])
            if r["answer"]:
                outcome[qi, d] = np.eye(k)[self.labels.index(r["answer"])]
                format_error[qi, d] = 0.0
            else:
                outcome[qi, d] = 1.0 / k  # unparseable: the uniform vector
                format_error[qi, d] = 1.0
        return xr.Dataset(
            {"outcome": (("question", "draw", "option"), outcome),
             "format_error": (("question", "draw"), format_error)},
            coords={"question": questions, "draw": np.arange(draws), "option": self.labels,
                    "model": model, "size": size},
        )

    def info(self):
        return {"producer": self.name, "csv": self.path.name}
