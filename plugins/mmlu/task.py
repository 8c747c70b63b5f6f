"""The MMLU task (Hendrycks et al., 2021; docs/design.md, "Experiments", "GPQA and MMLU, open models").

Data
----
Records of the ``cais/mmlu`` schema: ``question`` (str), ``subject`` (str), ``choices``
(list of str), ``answer`` (int, index into ``choices``). Read from

* ``data_dir``: a local directory holding ``test.jsonl`` and ``dev.jsonl`` (one record per
  line), e.g. ``../shared/data/mmlu``; or, when ``data_dir`` is not set,
* the Hugging Face hub dataset ``cais/mmlu`` (config ``all``, splits ``test`` and ``dev``)
  through ``datasets``.

Questions
---------
For each subject (sorted by name), the first ``per_subject`` test records *in file order*
(the paper caps MMLU at 100 per subject: 57 × 100 → 5,700, fewer where a subject has fewer).
A question's id is ``mmlu/<subject>/<i>``, ``i`` the record's position among that subject's
test records (0-based), which is the same in the hub's per-subject configs, its ``all``
config and the local files, so ids do not depend on the cap or on the subjects selected.

Few-shot contexts
-----------------
``n_shot`` examples drawn from the subject's dev records (5 per subject) with the context
seed only (see :mod:`hotmess.plugins.mc.prompting`); keys are dev positions within the subject.
With ``n_shot=3`` (the default in ``conf/task/mmlu.yaml``) the contexts differ in which examples
appear and in their order (5·4·3 = 60 ordered contexts); ``n_shot=5`` would only reorder them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hotmess.core.cube import file_hash
from hotmess.core.types import Question
from hotmess.plugins.mc.jsonl import iter_jsonl
from hotmess.plugins.mc.prompting import MCItem
from hotmess.plugins.mc.task import MultipleChoiceTask

HUB_ID = "cais/mmlu"
_FIELDS = {"question": str, "subject": str, "choices": list, "answer": int}


class MMLUTask(MultipleChoiceTask):
    """MMLU questions scored into probability vectors over the options.

    Parameters
    ----------
    data_dir : str or None
        Local directory with ``test.jsonl`` and ``dev.jsonl``; ``None`` = the hub.
    subjects : list of str or None
        Subjects to use (``None`` = all present in the data).
    per_subject : int or None
        Cap per subject: the first ``per_subject`` test records in file order (paper: 100).
    hub_id, hub_revision : str
        Hub dataset and revision used when ``data_dir`` is not set.
    **kwargs
        The answer options of :class:`~hotmess.plugins.mc.task.MultipleChoiceTask`
        (``n_shot``, ``format``, ``cot``, ``probabilities``, ...).

    Raises
    ------
    FileNotFoundError
        ``data_dir`` or one of its files does not exist.
    ValueError
        A malformed record (the message names file and line), an unknown subject, or a
        subject whose dev split has fewer than ``n_shot`` records.
    RuntimeError
        No ``data_dir`` and the hub dataset cannot be loaded (the message names both options).
    """

    name = "mmlu"

    def __init__(
        self,
        *,
        data_dir: str | None = None,
        subjects: Sequence[str] | None = None,
        per_subject: int | None = None,
        hub_id: str = HUB_ID,
        hub_revision: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if per_subject is not None and int(per_subject) < 1:
            raise ValueError(f"task.per_subject must be >= 1 or null, not {per_subject!r}")
        self.data_dir = None if data_dir in (None, "") else Path(str(data_dir)).expanduser()
        self.subjects = None if subjects is None else [str(s) for s in subjects]
        self.per_subject = None if per_subject is None else int(per_subject)
        self.hub_id = hub_id
        self.hub_revision = hub_revision
        self._questions: list[Question] | None = None
        self._dev: dict[str, list[MCItem]] = {}
        self._source: dict[str, str] = {}

    # -- loading -------------------------------------------------------------------------
    def _load(self) -> None:
        if self._questions is not None:
            return
        if self.data_dir is not None:
            test = _read_jsonl(self.data_dir / "test.jsonl")
            dev = _read_jsonl(self.data_dir / "dev.jsonl")
            self._source = {
                "data_source": "local JSONL (task.data_dir)",
                "data_test_sha256": file_hash(self.data_dir / "test.jsonl"),
                "data_dev_sha256": file_hash(self.data_dir / "dev.jsonl"),
            }
        else:
            test, dev = _load_hub(self.hub_id, self.hub_revision)
            self._source = {
                "data_source": f"hub:{self.hub_id}",
                "data_revision": str(self.hub_revision or "default"),
            }

        by_subject: dict[str, list[dict]] = defaultdict(list)
        for rec in test:
            by_subject[rec["subject"]].append(rec)
        dev_by: dict[str, list[dict]] = defaultdict(list)
        for rec in dev:
            dev_by[rec["subject"]].append(rec)

        available = sorted(by_subject)
        chosen = available if self.subjects is None else sorted(set(self.subjects))
        missing = [s for s in chosen if s not in by_subject]
        if missing:
            raise ValueError(
                f"task.subjects: unknown MMLU subject(s) {missing}; available: {available}"
            )
        questions: list[Question] = []
        for subject in chosen:
            if len(dev_by.get(subject, ())) < self.n_shot:
                raise ValueError(
                    f"task.n_shot={self.n_shot} but the dev split has only "
                    f"{len(dev_by.get(subject, ()))} records for subject {subject!r}"
                )
            self._dev[subject] = [
                MCItem(r["question"], tuple(r["choices"]), int(r["answer"]))
                for r in dev_by.get(subject, [])
            ]
            records = by_subject[subject]
            if self.per_subject is not None:
                records = records[: self.per_subject]
            for i, r in enumerate(records):
                questions.append(
                    Question(
                        id=f"mmlu/{subject}/{i}",
                        subject=subject,
                        target=int(r["answer"]),
                        n_outcomes=len(r["choices"]),
                        data={"question": r["question"], "choices": list(r["choices"]), "index": i},
                    )
                )
        self._questions = questions

    def questions(self) -> list[Question]:
        self._load()
        return list(self._questions)

    def fewshot_pool(self, question: Question) -> tuple[Sequence[MCItem], Sequence[Any]]:
        self._load()
        pool = self._dev[question.subject]
        return pool, list(range(len(pool)))

    def info(self) -> dict[str, Any]:
        self._load()
        out = super().info()
        out.update(self._source)
        out.update(
            {
                "subjects": "all"
                if self.subjects is None
                else ",".join(sorted(set(self.subjects))),
                "per_subject": -1 if self.per_subject is None else self.per_subject,
                "question_selection": "first per_subject test records of each subject in file order",
                "fewshot_pool": "dev split, same subject",
                "question_id": "mmlu/<subject>/<position among the subject's test records>",
            }
        )
        return out


def _check_record(rec: Any, where: str) -> dict:
    if not isinstance(rec, dict):
        raise ValueError(f"{where}: expected a JSON object with fields {sorted(_FIELDS)}")
    for key, typ in _FIELDS.items():
        if key not in rec:
            raise ValueError(
                f"{where}: missing field {key!r} (cais/mmlu schema: {sorted(_FIELDS)})"
            )
        if not isinstance(rec[key], typ) or (typ is int and isinstance(rec[key], bool)):
            raise ValueError(
                f"{where}: field {key!r} must be {typ.__name__}, got {type(rec[key]).__name__}"
            )
    if len(rec["choices"]) < 2 or len(rec["choices"]) > 26:
        raise ValueError(f"{where}: 'choices' must have 2..26 options, has {len(rec['choices'])}")
    if not 0 <= rec["answer"] < len(rec["choices"]):
        raise ValueError(
            f"{where}: 'answer' {rec['answer']} is not an index into the {len(rec['choices'])} choices"
        )
    return rec


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(
            f"MMLU data file {path} not found: task.data_dir must hold test.jsonl and dev.jsonl "
            f"(cais/mmlu schema: question, subject, choices, answer)"
        )
    return [_check_record(rec, f"{path}:{lineno}") for lineno, rec in iter_jsonl(path)]


def _load_hub(hub_id: str, revision: str | None) -> tuple[list[dict], list[dict]]:
    hint = (
        "set task.data_dir to a local directory with test.jsonl and dev.jsonl in the cais/mmlu "
        "schema (e.g. task.data_dir=../shared/data/mmlu)"
    )
    try:
        import datasets
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"loading MMLU from the hub ({hub_id}) needs the 'datasets' package "
            f"(pip install 'hotmess[datasets]'), or {hint}", name="datasets"
        ) from exc
    splits = []
    for split in ("test", "dev"):
        try:
            ds = datasets.load_dataset(hub_id, "all", split=split, revision=revision)
        except Exception as exc:  # network, missing dataset, offline mode: all say the same
            raise ConnectionError(
                f"could not load MMLU from the Hugging Face hub ({hub_id}, split {split!r}): "
                f"{type(exc).__name__}: {exc}. Either make the hub reachable, or {hint}"
            ) from exc
        splits.append([_check_record(dict(r), f"{hub_id}[{split}][{i}]") for i, r in enumerate(ds)])
    return splits[0], splits[1]
