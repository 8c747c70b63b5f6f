"""The producer contract: an experiment that makes its cube without the backend x task loop.

Some experiments do not sample a backend question by question: the synthetic optimizer
trains and rolls out its own models, SWE-bench runs an agent through Inspect, the survey
imports a CSV, importers convert other tools' logs. Each is a :class:`Producer`, registered
with the ``register_producers`` hook and selected by an experiment's ``producer:`` config
entry (``conf/producer/<name>.yaml``). The engine hands it the parsed
:class:`~hotmess.core.experiment.Experiment` (models, sizes, params, budgets per family,
draws, seed) and the experiment's :class:`~hotmess.core.cube.CubeStore`; the producer
returns the cube as a dataset and the engine stamps it (provenance, schema version) and
writes it atomically. Resumption goes through the one manifest of
:mod:`hotmess.core.manifest` and the store's atomic part files (``docs/design.md``,
"Plugins: backends, tasks, embedders, producers, figures").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from hotmess.core.cube import CubeStore
    from hotmess.core.experiment import Experiment


class Producer(ABC):
    """Makes one experiment's cube.

    Built by the factory a plugin registers with ``register_producers`` as
    ``factory(**options)``, ``options`` being the keys of the experiment's ``producer``
    config entry other than ``name`` (checked against :attr:`Options`,
    :mod:`hotmess.core.options`).

    The contract
    ------------
    * :meth:`produce` returns the cube as an ``xarray.Dataset`` that follows the schema of
      :attr:`outcome_kind` (:mod:`hotmess.core.schema`; the engine logs every departure).
      It does not write ``cube.nc`` itself: the engine adds the provenance attributes
      (``config``, versions, ``experiment``, ``task_info`` = :meth:`info`; attributes the
      dataset already has win), :func:`~hotmess.core.schema.stamp` s the schema version and
      writes it with :meth:`CubeStore.write_cube` (atomic).
    * Work that takes long is saved as it goes, through the store: finished pieces as part
      files (:meth:`CubeStore.write_named_part`, atomic), other state (checkpoints, logs)
      under ``store.root``; a rerun of the same command skips what is on disk.
    * :meth:`manifest` returns the settings that must not change while such state exists;
      the engine refuses a rerun with different ones (:func:`hotmess.core.manifest.check`).
    * Randomness derives from ``exp.seed`` only (:func:`hotmess.core.seeding.derive_seed`).
    * Bad settings raise ``ValueError`` (or a subclass) with one line naming the key.
    """

    #: Registered name (``"synthetic"``, ``"swebench"``, ...).
    name: str = "producer"
    #: The kind of cube it makes (:data:`hotmess.core.schema.KINDS`).
    outcome_kind: str = "point"
    #: The typed options (a dataclass; :mod:`hotmess.core.options`). ``None``: the
    #: constructor's signature declares them.
    Options: ClassVar[type | None] = None
    #: Whether the experiment must name models (``models:``); the engine refuses one without.
    needs_models: bool = False

    @abstractmethod
    def produce(self, exp: Experiment, store: CubeStore) -> xr.Dataset:
        """Make the cube of ``exp`` (see the class docstring for the contract).

        Parameters
        ----------
        exp : Experiment
            The parsed experiment: ``exp.families`` (model specs and budgets per family),
            ``exp.draws``, ``exp.seed``, ``exp.root``.
        store : CubeStore
            The experiment's store (``store.root == exp.root``).

        Returns
        -------
        xarray.Dataset
            The cube, without provenance (the engine adds it).
        """

    def manifest(self, exp: Experiment) -> dict[str, Any] | None:
        """The settings that must stay the same between a run and its resumption
        (JSON-serialisable), or ``None`` when the producer keeps no state between runs."""
        return None

    def has_samples(self, store: CubeStore) -> bool:
        """Whether ``store`` holds state of an earlier run (then :meth:`manifest` must match).
        Default: any part file."""
        return bool(store.named_part_paths()) or bool(store.part_paths())

    def info(self) -> dict[str, Any]:
        """Provenance for the cube's ``task_info`` attribute (JSON-serialisable; no secrets,
        no home-directory paths)."""
        return {"producer": self.name}
