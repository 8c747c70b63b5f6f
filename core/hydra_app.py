"""The Hydra application behind ``hotmess run`` (configs in ``hotmess.conf``)."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

import hotmess.conf

CONF_DIR = str(Path(hotmess.conf.__file__).parent)
log = logging.getLogger("hotmess")


def _missing_module_hint(cfg: DictConfig, exc: ModuleNotFoundError) -> str:
    """Name the pip extras of the plugins this run uses (a missing package is one of them)."""
    from hotmess.core import plugins

    hints = []
    for kind, key in (("tasks", "task"), ("backends", "backend"), ("producers", "producer")):
        name = (cfg.get(key) or {}).get("name")
        try:
            reg = plugins.get(kind, name) if name else None
        except plugins.PluginError:
            reg = None
        if reg is not None and reg.extra:
            hints.append(f"pip install 'hotmess[{reg.extra}]'  ({kind[:-1]} {name})")
    return f"the Python package {exc.name!r} is not installed" + (
        "; it belongs to one of: " + "; ".join(hints) if hints else "")


#: Overrides that change the draws: in a multirun, a job with any of them writes its own cube
#: (``<out_dir>/<experiment>/<key=value,...>/cube.nc``); sweeps over models, sizes, budgets
#: and shards fill one cube.
DRAW_KEYS = ("seed", "draws", "seeds_per_context", "chunk_questions", "task", "backend", "producer", "sampling")


def swept_keys(sweep_dir: Path) -> set[str] | None:
    """The keys a multirun sweeps over (``a=1,2``, ``range(...)``, ``choice(...)``), read from
    the ``multirun.yaml`` Hydra writes in the sweep folder; ``None`` if it cannot be read."""
    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        saved = yaml.safe_load((sweep_dir / "multirun.yaml").read_text())
        task = saved["hydra"]["overrides"]["task"]
        parsed = OverridesParser.create().parse_overrides(list(task))
    except Exception:  # noqa: BLE001 - a missing or foreign file: say we cannot tell
        return None
    return {o.key_or_group for o in parsed if o.is_sweep_override()}


def cube_subdir(task_overrides: list[str], swept: set[str]) -> str:
    """The sub-directory of a multirun job's cube: its values of the swept keys that change
    the draws (:data:`DRAW_KEYS`), sorted, joined by commas (``""`` when none)."""
    keep = []
    for o in task_overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key not in swept:
            continue
        if key.split(".", 1)[0] in DRAW_KEYS or (key.startswith("models.") and ".sampling" in key):
            keep.append(o.lstrip("+~"))
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", ",".join(sorted(keep)))[:200]


class _HomeFilter(logging.Filter):
    """Write the user's home directory as ``~`` in every log record (files and console)."""

    def __init__(self) -> None:
        super().__init__()
        self.home = str(Path.home())

    def filter(self, record: logging.LogRecord) -> bool:
        if self.home not in ("", "/"):
            msg = record.getMessage()
            if self.home in msg:
                record.msg, record.args = msg.replace(self.home, "~"), None
        return True


def _scrub_home(folder: Path) -> None:
    """Replace the home directory with ``~`` in Hydra's own output files of this job."""
    home = str(Path.home())
    if home in ("", "/"):
        return
    for path in [*folder.glob(".hydra/*.yaml"), *folder.parent.glob("multirun.yaml")]:
        try:
            text = path.read_text()
            if home in text:
                path.write_text(text.replace(home, "~"))
        except OSError:
            pass


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def hydra_main(cfg: DictConfig) -> str:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict

    from hotmess.core.cube import CubeError
    from hotmess.core.engine import ConfigError, run_experiment
    from hotmess.core.needs import unmet_needs
    from hotmess.core.plugins import PluginError

    hc = HydraConfig.get()
    for handler in logging.getLogger().handlers:
        handler.addFilter(_HomeFilter())
    _scrub_home(Path(hc.runtime.output_dir))
    if hc.mode == RunMode.MULTIRUN:
        swept = swept_keys(Path(hc.sweep.dir))
        if swept is None:
            log.warning("cannot read %s/multirun.yaml: this job writes into the experiment's one cube",
                        hc.sweep.dir)
        sub = cube_subdir(list(hc.overrides.task), swept or set())
        if sub:
            with open_dict(cfg):
                cfg.cube_subdir = sub
            log.info("this job changes the draws (%s): its cube is <out_dir>/%s/%s/cube.nc", sub,
                     cfg.get("experiment"), sub)
    unmet = unmet_needs(list(cfg.get("needs") or []))
    if unmet:
        log.warning("experiment %s lists needs this machine does not meet: %s (it may fail)",
                    cfg.get("experiment"), ", ".join(unmet))
    def _terminate(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        path = run_experiment(cfg, overrides=list(HydraConfig.get().overrides.task))
    except (ConfigError, PluginError, CubeError, OSError, ValueError) as exc:
        # bad settings or data (tasks raise ValueError naming the file, line or key), or the
        # machine (OSError: disk, permissions, an unreachable hub or server): one
        # clear line, no traceback; samples already written are kept
        if os.environ.get("HOTMESS_DEBUG"):
            raise
        print(f"hotmess run: error: {exc}\n(set HOTMESS_DEBUG=1 for the traceback)", file=sys.stderr)
        sys.exit(2)
    except ModuleNotFoundError as exc:
        print(f"hotmess run: error: {_missing_module_hint(cfg, exc)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (a scheduler's kill): never exit 0
        how = "terminated (SIGTERM)" if str(exc) == "SIGTERM" else "interrupted"
        print(f"hotmess run: {how}; the part files written so far are kept: rerun the same command "
              f"to resume", file=sys.stderr)
        sys.exit(143 if how.startswith("terminated") else 130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    log.info("cube: %s", path)
    print(f"cube: {path}")
    return str(path)
