"""The CUDA image's lock (constraints-cuda.txt) covers every package of the image, checked
without building it (the CUDA base cannot be pulled here).

The image installs ``pip install -c LOCK -r <requirements of EXTRAS>`` (Dockerfile). So:
every requirement of the Dockerfile's default extras must be pinned in the lock at a version
that satisfies it, on the image's platform (Linux x86-64, Python 3.12); the lock's own
``# via`` graph must be closed and rooted at those requirements; and, independently of uv, for
every locked package whose metadata this machine has at the same version, each of its
unconditional requirements must be in the lock at a satisfying version.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from image_requirements import RequirementsError, requirements  # noqa: E402

#: The CUDA image's platform: Ubuntu 24.04 (Python 3.12, glibc 2.39) on x86-64.
TARGET = {**default_environment(), "python_version": "3.12", "python_full_version": "3.12.3",
          "implementation_name": "cpython", "platform_python_implementation": "CPython",
          "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
          "os_name": "posix", "extra": ""}


def _dockerfile_args() -> dict[str, str]:
    args = {}
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        m = re.match(r"^ARG\s+(\w+)=(\S+)\s*$", line)
        if m:
            args.setdefault(m[1], m[2])
    return args


def _lock() -> dict[str, tuple[Version, list[str]]]:
    """name -> (pinned version, names in its `# via` annotation)."""
    out: dict[str, tuple[Version, list[str]]] = {}
    for n, line in enumerate((ROOT / "constraints-cuda.txt").read_text().splitlines(), 1):
        spec, _, via = line.partition("#")
        if not spec.strip():
            continue
        req = Requirement(spec.strip())
        pins = list(req.specifier)
        assert len(pins) == 1 and pins[0].operator == "==" and "*" not in pins[0].version, \
            f"constraints-cuda.txt line {n}: not an exact pin: {spec.strip()}"
        name = canonicalize_name(req.name)
        assert name not in out, f"constraints-cuda.txt line {n}: {name} pinned twice"
        vias = [v.strip() for v in via.removeprefix(" via").split(",")] if via.startswith(" via") else []
        out[name] = (Version(pins[0].version), vias)
    return out


LOCK = _lock()
ARGS = _dockerfile_args()


def _direct() -> list[Requirement]:
    extras = ARGS["EXTRAS"].split(",")
    reqs = [Requirement(r) for r in requirements(ROOT / "pyproject.toml", extras)]
    return [r for r in reqs if r.marker is None or r.marker.evaluate(TARGET)]


def test_the_dockerfile_default_is_the_cuda_lock_and_its_extras_are_the_locked_ones():
    assert ARGS["LOCK"] == "constraints-cuda.txt"
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    locked = next(ast.literal_eval(node.value) for node in ast.walk(tree) if isinstance(node, ast.Assign)
                  and any(getattr(t, "id", None) == "CUDA_EXTRAS" for t in node.targets))
    assert sorted(ARGS["EXTRAS"].split(",")) == sorted(locked)
    assert "sglang" in locked


def test_every_requirement_of_the_image_extras_is_pinned_in_the_lock_at_a_satisfying_version():
    direct = _direct()
    assert len(direct) >= 25  # the base dependencies plus seven extras
    for req in direct:
        name = canonicalize_name(req.name)
        assert name in LOCK, f"{req} (image extras) is not in constraints-cuda.txt"
        assert req.specifier.contains(LOCK[name][0], prereleases=True), \
            f"{req}: the lock pins {LOCK[name][0]}"


def test_the_lock_graph_is_closed_and_every_package_is_reached_from_the_image_extras():
    roots = {canonicalize_name(r.name) for r in _direct()}
    children: dict[str, set[str]] = {name: set() for name in LOCK}
    for name, (_, vias) in LOCK.items():
        assert vias, f"{name}: no `# via` annotation"
        for via in vias:
            if via.startswith("hotmess") or via.startswith("-c constraints-cuda.in"):
                continue
            parent = canonicalize_name(via)
            assert parent in LOCK, f"{name} is required via {via!r}, which is not in the lock"
            children[parent].add(name)
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += children[name]
    assert set(LOCK) - seen == set(), "locked but required by nothing of the image"


def test_locked_requirements_of_packages_known_here_are_in_the_lock():
    """Independent of uv: real metadata of the locked packages installed here at the same
    version; their unconditional requirements on the image's platform must be locked."""
    checked = 0
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name not in LOCK or Version(dist.version) != LOCK[name][0]:
            continue
        checked += 1
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(TARGET):
                continue  # an extra's requirement, or another platform's
            dep = canonicalize_name(req.name)
            assert dep in LOCK, f"{name}=={dist.version} requires {req}, not in constraints-cuda.txt"
            assert req.specifier.contains(LOCK[dep][0], prereleases=True), \
                f"{name}=={dist.version} requires {req}; the lock pins {LOCK[dep][0]}"
    assert checked >= 50, f"only {checked} locked packages have metadata here"


def test_the_lock_has_a_cuda_torch_matching_the_cuda_of_the_base_image():
    torch = LOCK["torch"][0]
    assert torch.local is None  # PyPI's Linux torch: the CUDA build (not +cpu)
    assert LOCK["sglang"][0] == Version("0.5.23")
    cuda = LOCK["nvidia-cuda-runtime"][0]
    base = re.search(r"nvidia/cuda:(\d+)\.(\d+)\.\d+-devel-ubuntu24\.04@sha256:[0-9a-f]{64}$", ARGS["BASE"])
    assert base, f"BASE is not a digest-pinned nvidia/cuda devel tag: {ARGS['BASE']}"
    assert (cuda.major, cuda.minor) == (int(base[1]), int(base[2]))


def test_image_requirements_expands_self_references_and_names_unknown_extras(tmp_path):
    pp = tmp_path / "pyproject.toml"
    pp.write_text('[project]\nname = "My_Pkg"\ndependencies = ["a>=1"]\n'
                  '[project.optional-dependencies]\nx = ["b", "a>=1"]\ny = ["my-pkg[x]", "c; sys_platform == \'win32\'"]\n')
    assert requirements(pp, []) == ["a>=1"]
    assert requirements(pp, ["y"]) == ["a>=1", "b", "c; sys_platform == 'win32'"]
    with pytest.raises(RequirementsError, match="no extra 'z'; extras: x, y"):
        requirements(pp, ["z"])
