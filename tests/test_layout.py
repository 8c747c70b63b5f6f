"""The package's layering, checked by parsing the imports of every module (no import runs).

core (engine, plugins manager, cube, schema, metrics) imports nothing from the plugins, the
figures (paper) or the command line (cli); the command line is the application layer above
core and paper (docs/design.md, "Layout and data flow")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Modules longer than this need a reason stated at their top (a line starting "Length:").
MAX_LINES = 600


def _imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """Every module an import statement names (absolute names; relative ones resolved against
    the module's folder below ``root``, the repository)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                parts = path.relative_to(root).parent.parts
                pkg = parts[: len(parts) - node.level + 1]
                base = ".".join(("hotmess", *pkg))
                out.append((node.lineno, f"{base}.{node.module}" if node.module else base))
            elif node.module:
                out.append((node.lineno, node.module))
    return out


def _modules(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def test_import_parser_sees_lazy_and_relative_imports(tmp_path):
    f = tmp_path / "core" / "probe.py"
    f.parent.mkdir()
    f.write_text("def f():\n    from hotmess.paper import build\n    import hotmess.plugins.hf\n"
                 "from . import schema\n")
    names = [n for _, n in _imports(f, root=tmp_path)]
    assert sorted(names) == ["hotmess.core", "hotmess.paper", "hotmess.plugins.hf"]


@pytest.mark.parametrize("path", _modules("core"), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_no_plugin_paper_or_cli(path):
    bad = [(line, name) for line, name in _imports(path)
           if name.split(".")[:2] in (["hotmess", "plugins"], ["hotmess", "paper"], ["hotmess", "cli"])]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: core must not depend on plugins, paper or cli"


def test_cli_is_the_only_layer_importing_core_and_paper():
    names = {n for p in _modules("cli") for _, n in _imports(p)}
    assert any(n.startswith("hotmess.core") for n in names)
    assert any(n.startswith("hotmess.paper") for n in names)
    for p in _modules("paper"):
        bad = [n for _, n in _imports(p) if n.startswith("hotmess.cli")]
        assert not bad, f"{p.relative_to(ROOT)} imports the command line: {bad}"


@pytest.mark.parametrize("folder", ["core", "cli"])
def test_no_long_module_without_a_reason(folder):
    long = []
    for p in _modules(folder):
        if p.name == "metrics.py" and p.parent.name == "core":
            continue  # being split into the hotmess.core.metrics package (issue 8, item 3)
        lines = p.read_text().splitlines()
        head = "\n".join(lines[:40])
        if len(lines) > MAX_LINES and "Length:" not in head:
            long.append(f"{p.relative_to(ROOT)} ({len(lines)} lines)")
    assert not long, f"modules over {MAX_LINES} lines without a 'Length:' reason at the top: {long}"
