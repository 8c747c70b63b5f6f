"""The api backend's provider split: the factory picks the provider's class, each provider and
reasoning mode declares the budgets it honours (``budget_kinds``), unsupported pairs are
refused, and the sglang plugin uses only public names of the api plugin and the shared
server helpers. No server is contacted (construction does not call the API)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytest.importorskip("openai")
pytest.importorskip("anthropic")

from hotmess.core.backend import ModelSpec  # noqa: E402
from hotmess.core.plugins import create  # noqa: E402
from hotmess.plugins.api.anthropic_messages import AnthropicBackend  # noqa: E402
from hotmess.plugins.api.common import ApiConfigError  # noqa: E402
from hotmess.plugins.api.openai_compat import OpenAICompatBackend  # noqa: E402

LOCAL = "http://127.0.0.1:9/v1"  # loopback: no key needed, never contacted here
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("provider", "reasoning", "cls", "kinds"), [
    ("openai", None, OpenAICompatBackend, ("tokens",)),  # default two_phase
    ("openai", "two_phase", OpenAICompatBackend, ("tokens",)),
    ("openai", "server", OpenAICompatBackend, ("tokens",)),
    ("openai", "effort", OpenAICompatBackend, ("effort",)),
    ("openai", "none", OpenAICompatBackend, ()),
    ("anthropic", None, AnthropicBackend, ("tokens",)),  # default thinking
    ("anthropic", "none", AnthropicBackend, ()),
])
def test_provider_class_and_budget_kinds(provider, reasoning, cls, kinds):
    opts = {"provider": provider, **({"reasoning": reasoning} if reasoning else {})}
    be = create("backends", "api", ModelSpec(name="m", size="s", source="x", options=opts), base_url=LOCAL)
    try:
        assert type(be) is cls and be.budget_kinds == kinds
        assert be.info()["api_budget_kinds"] == (",".join(kinds) or "none")
    finally:
        be.close()


@pytest.mark.parametrize(("provider", "reasoning"), [("anthropic", "two_phase"), ("anthropic", "effort"),
                                                     ("openai", "thinking")])
def test_unsupported_reasoning_mode_is_refused_naming_the_modes(provider, reasoning):
    spec = ModelSpec(name="m", size="s", source="x", options={"provider": provider, "reasoning": reasoning})
    with pytest.raises(ApiConfigError, match=rf"provider '{provider}' supports .*not '{reasoning}'"):
        create("backends", "api", spec, base_url=LOCAL)


def test_hf_and_sglang_take_token_caps():
    pytest.importorskip("torch")
    from hotmess.plugins.hf.backend import HFBackend
    from hotmess.plugins.sglang.backend import SGLangBackend

    assert HFBackend.budget_kinds == ("tokens",) and SGLangBackend.budget_kinds == ("tokens",)


def test_sglang_uses_only_public_names_of_other_plugins():
    tree = ast.parse((ROOT / "plugins" / "sglang" / "backend.py").read_text())
    imported = [(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
                for a in n.names if n.module.startswith("hotmess.plugins.") and not n.module.startswith("hotmess.plugins.sglang")]
    assert imported, "expected imports of the shared helpers"
    assert all(not name.startswith("_") for _, name in imported), imported
    assert {m for m, _ in imported} <= {"hotmess.plugins.api.common", "hotmess.plugins.api.openai_compat",
                                        "hotmess.plugins.serving"}, imported
    # one place for the server helpers: the api plugin has no copy of its own
    assert not (ROOT / "plugins" / "api" / "server.py").exists()
