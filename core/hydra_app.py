"""The Hydra application behind ``hotmess run`` (configs in ``hotmess.conf``)."""

from __future__ import annotations

import logging
import os
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


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def hydra_main(cfg: DictConfig) -> str:
    from hydra.core.hydra_config import HydraConfig

    from hotmess.core.cube import CubeError
    from hotmess.core.engine import ConfigError, run_experiment
    from hotmess.core.needs import unmet_needs
    from hotmess.core.plugins import PluginError

    unmet = unmet_needs(list(cfg.get("needs") or []))
    if unmet:
        log.warning("experiment %s lists needs this machine does not meet: %s (it may fail)",
                    cfg.get("experiment"), ", ".join(unmet))
    try:
        path = run_experiment(cfg, overrides=list(HydraConfig.get().overrides.task))
    except (ConfigError, PluginError, CubeError, FileNotFoundError, ValueError) as exc:
        # bad settings or data (tasks raise ValueError naming the file, line or key): one
        # clear line, no traceback; samples already written are kept
        if os.environ.get("HOTMESS_DEBUG"):
            raise
        print(f"hotmess run: error: {exc}\n(set HOTMESS_DEBUG=1 for the traceback)", file=sys.stderr)
        sys.exit(2)
    except ModuleNotFoundError as exc:
        print(f"hotmess run: error: {_missing_module_hint(cfg, exc)}", file=sys.stderr)
        sys.exit(2)
    log.info("cube: %s", path)
    print(f"cube: {path}")
    return str(path)
