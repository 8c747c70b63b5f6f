"""Print the requirements of hotmess with some extras, one a line, without installing hotmess.

The Dockerfile installs these (every version from the lock, ``pip install -c LOCK -r ...``)
in a layer before the source is copied, so an edit to the code does not reinstall torch.
Self-references (``hotmess[hf,test]`` inside the ``dev`` extra) are expanded. Standard
library only (it runs in the image before anything is installed).

    python3 scripts/image_requirements.py pyproject.toml hf,api,embed
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_SELF = re.compile(r"^\s*(?P<name>[A-Za-z0-9._-]+)\s*\[(?P<extras>[^\]]*)\]\s*(?P<rest>.*)$")


class RequirementsError(ValueError):
    """The pyproject has no such extra, or no [project] table (the message names it)."""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    """The requirement strings of the project's dependencies plus ``extras``.

    Parameters
    ----------
    pyproject : Path
        The project's ``pyproject.toml``.
    extras : list of str
        Extra names (``hf``, ``sglang``, ...); an empty list gives the base dependencies.

    Returns
    -------
    list of str
        PEP 508 requirement strings, in order of first appearance, without duplicates and
        without references to the project itself.

    Raises
    ------
    RequirementsError
        No ``[project]`` table, or an extra that the project does not define.
    """
    try:
        project = tomllib.loads(pyproject.read_text())["project"]
    except KeyError:
        raise RequirementsError(f"{pyproject}: no [project] table") from None
    name = _norm(project["name"])
    optional = {_norm(k): v for k, v in project.get("optional-dependencies", {}).items()}
    out: list[str] = []
    seen_extras: set[str] = set()

    def add(reqs: list[str]) -> None:
        for req in reqs:
            m = _SELF.match(req)
            if m and _norm(m["name"]) == name:
                expand([e.strip() for e in m["extras"].split(",") if e.strip()])
            elif req not in out:
                out.append(req)

    def expand(names: list[str]) -> None:
        for extra in names:
            key = _norm(extra)
            if key not in optional:
                raise RequirementsError(
                    f"{pyproject}: no extra {extra!r}; extras: {', '.join(sorted(optional))}")
            if key not in seen_extras:
                seen_extras.add(key)
                add(optional[key])

    add(list(project.get("dependencies", [])))
    expand(extras)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: image_requirements.py PYPROJECT EXTRA[,EXTRA...]", file=sys.stderr)
        return 2
    extras = [e.strip() for e in argv[1].split(",") if e.strip()]
    try:
        print("\n".join(requirements(Path(argv[0]), extras)))
    except (OSError, RequirementsError, tomllib.TOMLDecodeError) as exc:
        print(f"image_requirements: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
