"""What a cube directory holds, what is missing, and who is writing it (``hotmess status``).

Every sampling run records its *plan* in ``<root>/plan.json`` (under the directory lock,
merged with what earlier runs recorded): per (model, size, budget) cell the number of chunks,
questions and draws it expects, and the overrides of the command that made it. Status reads
that plan, the part files and the lock files — never a model, never the task's data — so it
is instant on a login node while the jobs of a sweep run elsewhere.
"""

from __future__ import annotations

import datetime as _dt
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotmess.core.cube import CubeStore
from hotmess.core.locks import Locks

PLAN_FILE = "plan.json"
#: Overrides of one job of a sweep that do not belong in the command that completes the cube.
JOB_ONLY = ("shard", "hydra/launcher", "hydra.launcher", "cube_subdir")


@dataclass(frozen=True)
class CellStatus:
    """One (model, size, budget) cell.

    Attributes
    ----------
    cell : str
        ``model/size/budget``.
    draws_done, draws_expected : int
        Draws in part files / in the plan (question x draw).
    parts_done, parts_expected : int
    last_write : str
        ISO time of the newest part ("" if none).
    claimed : int
        Chunks claimed right now by a live run (being sampled).
    """

    cell: str
    draws_done: int
    draws_expected: int
    parts_done: int
    parts_expected: int
    last_write: str
    claimed: int

    @property
    def complete(self) -> bool:
        return self.parts_done >= self.parts_expected


def record_plan(root: Path, cells: dict[str, list[int]], draws: int, overrides: Sequence[str]) -> None:
    """Merge this run's cells into ``<root>/plan.json`` (call under the directory lock).

    Parameters
    ----------
    cells : dict
        ``"model/size/budget"`` -> the number of questions of each chunk, in chunk order.
    draws : int
    overrides : sequence of str
        The command-line overrides of this run (``key=value``).
    """
    path = Path(root) / PLAN_FILE
    plan: dict[str, Any] = {"cells": {}, "draws": draws}
    if path.exists():
        try:
            plan = json.loads(path.read_text())
        except ValueError:
            pass
    plan.setdefault("cells", {}).update({k: {"chunks": v} for k, v in cells.items()})
    plan["draws"] = draws
    home = str(Path.home())
    keep = [o if home in ("", "/") else o.replace(home, "~")  # no home path in the folder's files
            for o in overrides if not o.lstrip("+~").startswith(JOB_ONLY)]
    plan["command"] = "hotmess run " + " ".join(shlex.quote(o) for o in keep)
    plan["updated"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(plan, indent=1, sort_keys=True))
    tmp.replace(path)


def cell_status(root: str | Path) -> tuple[list[CellStatus], dict[str, Any]]:
    """The status of every planned cell of one cube directory.

    Returns
    -------
    cells : list of CellStatus
    plan : dict
        The plan (``command``, ``draws``, ``updated``); ``{}`` without a plan.

    Raises
    ------
    FileNotFoundError
        ``root`` has no plan (no sampling run has started there); the message says so.
    """
    root = Path(root)
    path = root / PLAN_FILE
    if not path.exists():
        raise FileNotFoundError(f"{root}: no {PLAN_FILE} (no sampling run has started in this folder)")
    plan = json.loads(path.read_text())
    store = CubeStore(root)
    locks = Locks(root)
    live = locks.live_runs(clean=False)
    held = locks.claimed_by_live_runs() if live else set()
    out = []
    for cell, entry in plan.get("cells", {}).items():
        model, size, budget = cell.split("/", 2)
        chunks = entry["chunks"]
        done, times, claimed = 0, [], 0
        parts = 0
        for i, n in enumerate(chunks):
            p = store.part_path(model, size, budget, i)
            if p.exists():
                parts += 1
                done += n * int(plan.get("draws", 0))
                times.append(p.stat().st_mtime)
            elif f"{store.cell_dir(model, size, budget).name}__{i:05d}" in held:
                claimed += 1
        last = _dt.datetime.fromtimestamp(max(times), _dt.UTC).isoformat(timespec="seconds") if times else ""
        out.append(CellStatus(cell, done, sum(chunks) * int(plan.get("draws", 0)), parts, len(chunks), last,
                              claimed))
    plan["live_runs"] = [h.describe() for h in live]
    return out, plan
