"""nox sessions: tests, lint, demo (the CPU reproduction), figures.

    nox -s tests     # install from constraints.txt into a fresh venv, run the whole test suite
    nox -s lint      # ruff
    nox -s demo      # the default experiment (CPU) and its figure
    nox -s figures   # rebuild every figure whose cubes exist under results/
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
CONSTRAINTS = ("-c", "constraints.txt")
# Local data for machines without hub access (the README explains task.data_dir).
MMLU_DIR = os.environ.get("HOTMESS_MMLU_DIR", "../shared/data/mmlu")


# llama-cpp-python (the tests' local OpenAI-compatible server) compiles on install; a native
# build can use CPU features (AMX) that crash on some machines, so build a portable AVX2 one.
LLAMA_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON "
    "-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AVX512=OFF -DLLAVA_BUILD=OFF"
)


def _install(session: nox.Session, extras: str) -> None:
    env = {"CMAKE_ARGS": os.environ.get("CMAKE_ARGS", LLAMA_CMAKE_ARGS)}
    session.install(*CONSTRAINTS, "-e", f".[{extras}]", env=env)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (all of it, real model tests included)."""
    _install(session, "dev,api,swebench,embed,synthetic,slurm,lmeval")
    # pytest exits 5 when a selection collects no test: that is not a failure of the suite.
    session.run("pytest", *(session.posargs or ["-q"]), success_codes=[0, 5])


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", "core", "plugins", "paper", "tests", "benchmarks", "noxfile.py")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The default experiment on the CPU, then its figure."""
    _install(session, "hf")
    session.run("hotmess", "run", f"task.data_dir={MMLU_DIR}", *session.posargs)
    session.run("hotmess", "paper")


@nox.session(python=PYTHON)
def figures(session: nox.Session) -> None:
    _install(session, "hf")
    session.run("hotmess", "paper", *session.posargs)
