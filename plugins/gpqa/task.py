"""The GPQA task (Rein et al., 2023; docs/design.md, "Experiments", GPQA rows).

Data
----
Records of the ``Idavidrein/gpqa`` schema (one row per question; the fields used are
``Question``, ``Correct Answer``, ``Incorrect Answer 1..3``, ``Record ID``, ``High-level domain``,
``Subdomain`` and, where present, ``Writer's Difficulty Estimate``). Read from

* ``data_dir``: a local directory holding ``gpqa_<subset>.csv`` (the format of the original
  release) or ``gpqa_<subset>.jsonl`` (one record per line, same field names); or, when
  ``data_dir`` is not set,
* the gated hub dataset ``Idavidrein/gpqa`` (config ``gpqa_<subset>``, split ``train``)
  through ``datasets``, authenticated with the user's hub token (the ``HF_TOKEN``
  environment variable or a cached ``hf auth login``; never a config value, so no token
  reaches a cube). Access must first be requested on the dataset's page.

GPQA's authors ask that its questions not be published: nothing here stores question text
outside the cube a user produces, and the tests use records they write themselves.

Option order
------------
Each question's four options are shuffled *once*, by a permutation that is a pure function
of ``(shuffle_seed, Record ID)``: option ``j`` of ``[correct, incorrect 1, 2, 3]`` is ranked by
``derive_seed(shuffle_seed, "gpqa-options", record_id, j)``. The same question therefore
shows the same order in every draw, context, model, size and budget (re-shuffling per draw
would mix option-order variance into sampling variance); the permutation is kept in
``Question.data["order"]`` and ``shuffle_seed`` in :meth:`GPQATask.info`.

Questions and few-shot contexts
-------------------------------
The first ``limit`` records in file order (all when ``limit`` is null); id
``gpqa/<subset>/<Record ID>``. Few-shot examples (``n_shot``, solved, without reasoning) are
drawn with the context seed from the *other* questions of the same subset, each shown in its
own fixed option order (GPQA has no separate dev split; **OPEN**, recorded as
``fewshot_pool``). ``n_shot=0`` with ``cot=true`` is the 0-shot chain-of-thought format.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hotmess.core.cube import file_hash
from hotmess.core.seeding import derive_seed
from hotmess.core.types import Question
from hotmess.plugins.mc.jsonl import iter_jsonl
from hotmess.plugins.mc.prompting import MCItem
from hotmess.plugins.mc.task import MultipleChoiceTask

HUB_ID = "Idavidrein/gpqa"
SUBSETS = ("main", "diamond", "extended", "experts")
REQUIRED = (
    "Question",
    "Correct Answer",
    "Incorrect Answer 1",
    "Incorrect Answer 2",
    "Incorrect Answer 3",
    "Record ID",
)
GATED_HELP = (
    "GPQA is a gated dataset: log in to huggingface.co, accept its terms at "
    "https://huggingface.co/datasets/Idavidrein/gpqa, then make your token available "
    "(export HF_TOKEN=... or `hf auth login`)"
)


def option_order(shuffle_seed: int, record_id: str, n: int = 4) -> list[int]:
    """The fixed permutation of one question's options.

    Returns
    -------
    list of int, length ``n``
        ``order[k]`` is the index in ``[correct, incorrect 1, ...]`` of the option shown at
        position ``k`` (label ``"ABCD"[k]``).
    """
    return sorted(
        range(n),
        key=lambda j: (derive_seed(int(shuffle_seed), "gpqa-options", str(record_id), j), j),
    )


class GPQATask(MultipleChoiceTask):
    """GPQA questions scored into probability vectors over the four options.

    Parameters
    ----------
    subset : {"main", "diamond", "extended", "experts"}
        The hub config ``gpqa_<subset>`` (paper: main for the frontier models).
    data_dir : str or None
        Local directory with ``gpqa_<subset>.csv`` or ``.jsonl``; ``None`` = the hub.
    limit : int or None
        Use the first ``limit`` records in file order.
    shuffle_seed : int
        Seed of the once-per-question option shuffle (module docstring).
    hub_id, hub_revision : str
    **kwargs
        The answer options of :class:`~hotmess.plugins.mc.task.MultipleChoiceTask`
        (``n_shot``, ``format``, ``cot``, ``probabilities``, ...).

    Raises
    ------
    FileNotFoundError
        ``data_dir`` holds no file for the subset.
    ValueError
        A malformed record (file and row named), duplicate record ids, a bad option.
    RuntimeError
        No ``data_dir`` and the hub dataset cannot be loaded; the message says how to get
        access to the gated dataset and names the local-data option.
    """

    #: GPQA's writer difficulty label per question (Figs. 20, 22).
    question_coords = ("difficulty",)

    name = "gpqa"

    def __init__(
        self,
        *,
        subset: str = "main",
        data_dir: str | None = None,
        limit: int | None = None,
        shuffle_seed: int = 0,
        hub_id: str = HUB_ID,
        hub_revision: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if subset not in SUBSETS:
            raise ValueError(f"task.subset must be one of {SUBSETS}, not {subset!r}")
        if limit is not None and int(limit) < 1:
            raise ValueError(f"task.limit must be >= 1 or null, not {limit!r}")
        self.subset = subset
        self.data_dir = None if data_dir in (None, "") else Path(str(data_dir)).expanduser()
        self.limit = None if limit is None else int(limit)
        self.shuffle_seed = int(shuffle_seed)
        self.hub_id = hub_id
        self.hub_revision = hub_revision
        self._questions: list[Question] | None = None
        self._items: dict[str, MCItem] = {}
        self._source: dict[str, str] = {}

    # -- loading -------------------------------------------------------------------------
    def _load(self) -> None:
        if self._questions is not None:
            return
        if self.data_dir is not None:
            rows, where, path = _read_local(self.data_dir, self.subset)
            self._source = {
                "data_source": f"local {path.suffix[1:].upper()} (task.data_dir)",
                "data_sha256": file_hash(path),
            }
        else:
            rows, where = _load_hub(self.hub_id, self.subset, self.hub_revision)
            self._source = {
                "data_source": f"hub:{self.hub_id}/gpqa_{self.subset}",
                "data_revision": str(self.hub_revision or "default"),
            }
        questions, seen = [], {}
        for k, row in enumerate(rows):
            rec = _check_row(row, where(k))
            rid = rec["Record ID"]
            if rid in seen:
                raise ValueError(f"{where(k)}: duplicate Record ID {rid!r} (also at {seen[rid]})")
            seen[rid] = where(k)
            options = [
                rec["Correct Answer"],
                rec["Incorrect Answer 1"],
                rec["Incorrect Answer 2"],
                rec["Incorrect Answer 3"],
            ]
            order = option_order(self.shuffle_seed, rid)
            choices = [options[j] for j in order]
            target = order.index(0)
            qid = f"gpqa/{self.subset}/{rid}"
            self._items[qid] = MCItem(rec["Question"], tuple(choices), target)
            questions.append(
                Question(
                    id=qid,
                    subject=str(row.get("High-level domain") or "").strip() or "unknown",
                    target=target,
                    n_outcomes=4,
                    data={
                        "question": rec["Question"],
                        "choices": choices,
                        "order": order,
                        "record_id": rid,
                        "subdomain": str(row.get("Subdomain") or "").strip(),
                        "difficulty": str(row.get("Writer's Difficulty Estimate") or "").strip(),
                    },
                )
            )
        if self.limit is not None:
            questions = questions[: self.limit]
        self._pool_ids = list(self._items)  # every record of the subset, limit or not
        self._questions = questions

    def questions(self) -> list[Question]:
        self._load()
        return list(self._questions)

    def fewshot_pool(self, question: Question) -> tuple[Sequence[MCItem], Sequence[Any]]:
        self._load()
        keys = [k for k in self._pool_ids if k != question.id]
        return [self._items[k] for k in keys], keys

    def subject_title(self, question: Question) -> str:
        return question.subject.lower() if question.subject != "unknown" else "science"

    def info(self) -> dict[str, Any]:
        self._load()
        out = super().info()
        out.update(self._source)
        out.update(
            {
                "subset": self.subset,
                "limit": -1 if self.limit is None else self.limit,
                "shuffle_seed": self.shuffle_seed,
                "option_shuffle": "once per question: options ranked by blake2b(shuffle_seed, 'gpqa-options', Record ID, j)",
                "fewshot_pool": "the other questions of the same subset, each in its own fixed option order",
                "question_id": "gpqa/<subset>/<Record ID>",
            }
        )
        return out


def _check_row(row: Any, where: str) -> dict[str, str]:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a record with fields {list(REQUIRED)}")
    out = {}
    for key in REQUIRED:
        val = row.get(key)
        if val is None or not str(val).strip():
            raise ValueError(f"{where}: missing or empty field {key!r} (Idavidrein/gpqa schema)")
        out[key] = str(val).strip()
    return out


def _read_local(data_dir: Path, subset: str):
    for ext in ("csv", "jsonl"):
        path = data_dir / f"gpqa_{subset}.{ext}"
        if path.is_file():
            break
    else:
        raise FileNotFoundError(
            f"no GPQA data for subset {subset!r} in {data_dir}: expected gpqa_{subset}.csv or "
            f"gpqa_{subset}.jsonl with the Idavidrein/gpqa fields {list(REQUIRED)}"
        )
    if path.suffix == ".csv":
        from hotmess.plugins.mc.jsonl import read_text

        with io.StringIO(read_text(path), newline="") as f:
            reader = csv.DictReader(f)
            missing = [k for k in REQUIRED if k not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(
                    f"{path}: header lacks column(s) {missing} (Idavidrein/gpqa schema)"
                )
            rows = list(reader)
        # data row k is CSV record k+2 (after the header); multi-line cells make it a record, not a line
        return rows, (lambda k: f"{path}: record {k + 2}"), path
    rows = list(iter_jsonl(path))
    linenos = [n for n, _ in rows]
    return [r for _, r in rows], (lambda k: f"{path}:{linenos[k]}"), path


def hub_error_message(exc: BaseException, hub_id: str, subset: str) -> str:
    """The message for a failed hub load: the cause, how to get access, the local option."""
    text = f"{type(exc).__name__}: {exc}"
    gated = any(
        w in text.lower() for w in ("gated", "401", "403", "authenticat", "unauthorized", "access")
    )
    local = f"or set task.data_dir to a directory with gpqa_{subset}.csv (or .jsonl) in the Idavidrein/gpqa schema"
    if gated:
        return f"no access to the GPQA dataset {hub_id} (config gpqa_{subset}): {text}. {GATED_HELP}; {local}"
    return (
        f"could not load GPQA from the Hugging Face hub ({hub_id}, config gpqa_{subset}): {text}. "
        f"If the hub is reachable, note that {GATED_HELP}; {local}"
    )


def _load_hub(hub_id: str, subset: str, revision: str | None):
    try:
        import datasets
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"loading GPQA from the hub ({hub_id}) needs the 'datasets' package (pip install 'hotmess[datasets]'), "
            f"or set task.data_dir to a directory with gpqa_{subset}.csv", name="datasets"
        ) from exc
    try:
        ds = datasets.load_dataset(hub_id, f"gpqa_{subset}", split="train", revision=revision)
    except Exception as exc:  # gated, offline, missing: the message tells which and what to do
        raise ConnectionError(hub_error_message(exc, hub_id, subset)) from exc
    return [dict(r) for r in ds], (lambda k: f"{hub_id}[gpqa_{subset}][{k}]")
