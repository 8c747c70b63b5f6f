"""What an experiment needs from the machine (its config's ``needs`` list)."""

from __future__ import annotations

import os
import shutil


def unmet_needs(needs: list[str] | None) -> list[str]:
    """Which of an experiment's ``needs`` this machine lacks: ``gpu`` (a CUDA device torch
    sees), ``docker`` (the command on PATH), ``network`` (unless ``HOTMESS_OFFLINE=1``), or
    the name of an environment variable that must be set (``ANTHROPIC_API_KEY``,
    ``HF_TOKEN``, ...)."""
    unmet = []
    for need in needs or []:
        if need == "gpu":
            try:
                import torch

                ok = torch.cuda.is_available()
            except ImportError:
                ok = False
        elif need == "docker":
            ok = shutil.which("docker") is not None
        elif need == "network":
            ok = os.environ.get("HOTMESS_OFFLINE", "") != "1"
        else:
            ok = bool(os.environ.get(need))
        if not ok:
            unmet.append(need)
    return unmet
