"""The ``openai`` embedder: the OpenAI embeddings API (``POST /v1/embeddings``).

The paper embedded open-ended answers with OpenAI ``text-embedding-3-large`` (PAPER.md 1b).
Any server that speaks the same endpoint works through ``base_url``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from hotmess.core.embedder import Embedder

#: Output size of OpenAI's embedding models without the ``dimensions`` parameter.
KNOWN_DIMS = {"text-embedding-3-large": 3072, "text-embedding-3-small": 1536, "text-embedding-ada-002": 1536}
#: The API accepts at most 2048 inputs per request.
MAX_BATCH = 2048


class OpenAIEmbedder(Embedder):
    """Embed texts through the OpenAI embeddings API, batched, with retries.

    Parameters
    ----------
    model : str
        Embedding model (default the paper's ``text-embedding-3-large``).
    dimensions : int, optional
        Shorter output vectors (``text-embedding-3-*`` only); default the model's full size.
    base_url : str, optional
        Another server speaking the endpoint (e.g. ``http://127.0.0.1:8000/v1``); default
        the SDK's (``OPENAI_BASE_URL`` or api.openai.com).
    batch_size : int
        Texts per request (1 to 2048).
    max_attempts : int
        Attempts per request before giving up (tenacity; exponential backoff with jitter) on
        connection errors, timeouts, HTTP 408/409/429 and 5xx. Other HTTP errors (400, 401,
        ...) are not retried.
    timeout : float
        Seconds per request.
    max_wait : float
        Cap on one backoff wait (seconds).

    The API key is read from the ``OPENAI_API_KEY`` environment variable only (never from
    a config file, so it cannot end up in a cube's provenance).

    Raises
    ------
    RuntimeError
        ``OPENAI_API_KEY`` is not set.
    ValueError
        Invalid options.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-large",
        dimensions: int | None = None,
        base_url: str | None = None,
        batch_size: int = 256,
        max_attempts: int = 6,
        timeout: float = 60.0,
        max_wait: float = 30.0,
    ) -> None:
        import openai

        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            raise RuntimeError("the openai embedder needs the OPENAI_API_KEY environment variable")
        if not 1 <= int(batch_size) <= MAX_BATCH:
            raise ValueError(f"batch_size must be in [1, {MAX_BATCH}], not {batch_size}")
        if int(max_attempts) < 1:
            raise ValueError(f"max_attempts must be >= 1, not {max_attempts}")
        self.model = model
        self.dimensions = None if dimensions is None else int(dimensions)
        self.base_url = base_url
        self.batch_size = int(batch_size)
        self.max_attempts = int(max_attempts)
        self.timeout = float(timeout)
        self.max_wait = float(max_wait)
        # the SDK's own retries are off: tenacity does them (one policy, counted in `retries`)
        self._client = openai.OpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=self.timeout)
        self._dim = self.dimensions or KNOWN_DIMS.get(model)
        #: Retried attempts so far (for logs and tests).
        self.retries = 0
        #: Requests sent so far (successful or not).
        self.requests = 0

    @property
    def dim(self) -> int:
        """Embedding size; for a model of unknown size, found with one probe request."""
        if self._dim is None:
            self._dim = int(self._embed_batch(["dimension probe"]).shape[1])
        return self._dim

    def _retryable(self, exc: BaseException) -> bool:
        import openai

        if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
            return True
        if isinstance(exc, openai.APIStatusError):
            return exc.status_code in (408, 409, 429) or exc.status_code >= 500
        return False

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        from tenacity import (
            Retrying,
            retry_if_exception,
            stop_after_attempt,
            wait_random_exponential,
        )

        def before_sleep(state) -> None:
            self.retries += 1

        kwargs: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.dimensions is not None:
            kwargs["dimensions"] = self.dimensions
        for attempt in Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_random_exponential(multiplier=0.5, max=self.max_wait),
            retry=retry_if_exception(self._retryable),
            before_sleep=before_sleep,
            reraise=True,
        ):
            with attempt:
                self.requests += 1
                resp = self._client.embeddings.create(**kwargs)
        items = sorted(resp.data, key=lambda d: d.index)
        if [d.index for d in items] != list(range(len(texts))):
            raise RuntimeError(
                f"embeddings server returned indices {[d.index for d in items]} for {len(texts)} inputs"
            )
        arr = np.asarray([d.embedding for d in items], dtype=np.float64)
        if arr.ndim != 2:
            raise RuntimeError(f"embeddings server returned ragged vectors for {len(texts)} inputs")
        return arr

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``.

        Returns
        -------
        numpy.ndarray, shape (len(texts), dim), float64
            Row ``i`` embeds ``texts[i]`` (OpenAI's vectors have unit length).

        Raises
        ------
        ValueError
            A text is empty or not a string (the API rejects empty inputs).
        openai.APIError
            A request failed after ``max_attempts`` attempts, or with a non-retryable error.
        """
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise ValueError(f"text {i} is empty or not a string: {t!r}")
        if not texts:
            return np.zeros((0, self.dim))
        parts = [self._embed_batch(texts[i:i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        out = np.concatenate(parts, axis=0)
        if self._dim is None:
            self._dim = out.shape[1]
        elif out.shape[1] != self._dim:
            raise RuntimeError(f"embedding model {self.model!r} returned {out.shape[1]} dimensions, expected {self._dim}")
        return out

    def info(self) -> dict[str, Any]:
        """Provenance (no key, no host beyond a user-given base URL)."""
        import openai

        return {"embedder": "openai", "model": self.model, "dimensions": self._dim,
                "base_url": self.base_url, "openai_sdk": openai.__version__}
