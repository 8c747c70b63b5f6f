"""Build the CPU image from the project's Dockerfile and reproduce the quick experiments in it.

What ``nox -s image`` (and CI, ``.ci/run``) runs; standard library only, as root on a Debian
host (docs/design.md, "Container"):

1. installs Docker Engine (``docker.io``) and ``mmdebstrap`` from Debian if absent;
2. uses a running Docker daemon, else starts ``dockerd`` with loopback-only networking (no
   bridge, no iptables), waits for it (bounded) and stops it by PID at the end, printing its
   log on failure;
3. builds a Debian 12 base with mmdebstrap + ``docker import`` once (kept between runs);
4. builds the CPU image (``--build-arg BASE=<that base> LOCK=constraints.txt``) with this
   machine's pip settings passed as build secrets; local wheel folders and file:// indexes are
   served to the build by a loopback HTTP server for the length of the build; then checks that
   none of it reached the image (``docker history``, ``pip config list`` and a grep in it);
5. runs, as a non-root UID with no network, ``hotmess --help``, ``hotmess plugins``,
   ``hotmess reproduce --scale cpu`` for survey, a tiny MMLU run with the real model (the MMLU
   data mounted read-only) and a tiny synthetic optimizer, then ``hotmess paper``;
6. asserts the cubes and figures exist on the bind mount, belong to that UID and record the
   git revision of the checkout; prints the build time, image size and what was written.

    python3 scripts/ci_image.py [--keep-daemon] [--uid 4242]
"""

from __future__ import annotations

import argparse
import configparser
import functools
import http.server
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
BASE_TAG = "hotmess-base:debian-bookworm"
IMAGE_TAG = "hotmess:cpu-ci"
CPU_EXTRAS = "hf,datasets,api,embed,swebench,synthetic"
MIRROR = os.environ.get("HOTMESS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SECURITY = os.environ.get("HOTMESS_DEBIAN_SECURITY", "http://deb.debian.org/debian-security")
DOCKERD_ARGS = ["--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false"]
#: The quick experiments and their tiny-scale overrides (CPU minutes, not hours).
RUNS = [
    ("survey", []),
    ("cpu_demo", ["task.data_dir=/data/mmlu", "task.subjects=[marketing]", "task.per_subject=2",
                  "task.n_shot=1", "draws=2", "seeds_per_context=2", "~budgets", "+budgets={small:8}",
                  "sampling.max_tokens=2"]),
    ("synthetic", ["synthetic.sizes=[{name:s1,layers:1,width:16,heads:2}]",
                   "synthetic.data.trajectories=20", "synthetic.data.trajectory_steps=50",
                   "synthetic.train.steps=20", "synthetic.train.warmup=4", "synthetic.train.eval_every=10",
                   "synthetic.train.checkpoint_every=10", "synthetic.train.eval_pairs=64",
                   "synthetic.rollout.starts=16", "synthetic.rollout.steps=16", "synthetic.threads=2"]),
]


class Failure(RuntimeError):
    """A step failed; the message says which and why."""


def log(msg: str) -> None:
    print(f"[image] {msg}", flush=True)


def sh(cmd: list[str], *, timeout: float, check: bool = True, capture: bool = False,
       env: dict | None = None, quiet: bool = False) -> subprocess.CompletedProcess:
    if not quiet:
        log("$ " + shlex.join(cmd))
    try:
        proc = subprocess.run(cmd, timeout=timeout, text=True, env=env,
                              capture_output=capture)
    except subprocess.TimeoutExpired:
        raise Failure(f"timed out after {timeout:.0f} s: {shlex.join(cmd)}") from None
    if check and proc.returncode != 0:
        tail = ((proc.stdout or "") + (proc.stderr or ""))[-4000:] if capture else ""
        raise Failure(f"exit {proc.returncode}: {shlex.join(cmd)}\n{tail}")
    return proc


# ----------------------------------------------------------------------------- host setup
def ensure_packages(docker: str | None) -> str:
    """Install docker.io and mmdebstrap from Debian when missing; return the docker CLI."""
    missing = [pkg for pkg, exe in (("docker.io", "dockerd"), ("mmdebstrap", "mmdebstrap"))
               if shutil.which(exe) is None]
    if missing:
        if shutil.which("apt-get") is None:
            raise Failure(f"{' and '.join(missing)} missing and no apt-get to install them")
        t = time.monotonic()
        wait_lock = ["-o", "DPkg::Lock::Timeout=600"]  # another apt-get may hold the lock
        sh(["apt-get", *wait_lock, "update", "-q"], timeout=900)
        sh(["apt-get", *wait_lock, "install", "-y", "-q", "--no-install-recommends", *missing], timeout=1500,
           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        log(f"installed {', '.join(missing)} in {time.monotonic() - t:.0f} s")
    # The CLI of the docker.io package matches its daemon (and has BuildKit built in); another
    # `docker` earlier on PATH may need a buildx plugin that is not installed.
    cli = docker or ("/usr/bin/docker" if Path("/usr/bin/docker").exists() else shutil.which("docker"))
    if not cli:
        raise Failure("no docker CLI after installing docker.io")
    return cli


class Daemon:
    """A running Docker daemon: the host's if one answers, else our own dockerd."""

    def __init__(self, cli: str, workdir: Path):
        self.cli, self.proc, self.log_path = cli, None, workdir / "dockerd.log"

    def answers(self) -> bool:
        return subprocess.run([self.cli, "version"], capture_output=True, timeout=30).returncode == 0

    def start(self, wait_s: float = 90) -> None:
        if self.answers():
            log("using the Docker daemon already running")
            return
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise Failure("no dockerd (package docker.io)")
        log(f"starting dockerd {' '.join(DOCKERD_ARGS)} (log {self.log_path})")
        logf = self.log_path.open("w")
        self.proc = subprocess.Popen([dockerd, *DOCKERD_ARGS], stdout=logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"dockerd exited with {self.proc.returncode}")
            if self.answers():
                log(f"dockerd (PID {self.proc.pid}) answers")
                return
            time.sleep(1)
        raise Failure(f"dockerd did not answer within {wait_s:.0f} s")

    def print_log(self) -> None:
        if self.proc is not None and self.log_path.exists():
            print("----- dockerd log (last 80 lines) -----", file=sys.stderr)
            print("\n".join(self.log_path.read_text(errors="replace").splitlines()[-80:]), file=sys.stderr)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        log(f"stopping dockerd (PID {self.proc.pid})")
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


def ensure_base(cli: str, workdir: Path) -> float:
    """The Debian 12 base image, made once with mmdebstrap; returns the seconds it took."""
    if subprocess.run([cli, "image", "inspect", BASE_TAG], capture_output=True, timeout=60).returncode == 0:
        log(f"base {BASE_TAG} exists (cached)")
        return 0.0
    t = time.monotonic()
    tar = workdir / "bookworm.tar"
    sources = [f"deb {MIRROR} bookworm main", f"deb {MIRROR} bookworm-updates main",
               f"deb {SECURITY} bookworm-security main"]
    sh(["nice", "-n", "10", "mmdebstrap", "--variant=apt", "--mode=root", "--format=tar",
        # like this host's apt: the mirror may serve a snapshot whose Release has expired
        '--aptopt=Acquire::Check-Valid-Until "false"', "--include=ca-certificates",
        "bookworm", str(tar), *sources], timeout=1200)
    sh([cli, "import", "--change", 'CMD ["/bin/bash"]', str(tar), BASE_TAG], timeout=600)
    tar.unlink()
    took = time.monotonic() - t
    log(f"base {BASE_TAG} built in {took:.0f} s")
    return took


# ----------------------------------------------------------------------------- pip settings
def _pip_settings() -> dict[str, list[str]]:
    """This machine's pip settings (``pip config list`` and PIP_* variables), by option."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                         text=True, timeout=60).stdout
    settings: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        option = key.split(".", 1)[-1]
        settings[option] = value.strip().strip("'\"").split()
    return settings


class Served:
    """Local wheel folders and file:// indexes of the pip settings, served on loopback."""

    def __init__(self, workdir: Path):
        self.root = workdir / "served"
        self.root.mkdir(exist_ok=True)
        self.count = 0
        self.server = None

    def url(self, location: str, *, index: bool) -> str:
        """The loopback URL for a local location (a path or file:// URL); others unchanged."""
        parsed = urlparse(location)
        if parsed.scheme not in ("", "file"):
            return location
        path = Path(parsed.path if parsed.scheme == "file" else location)
        # an index's pages may link to ../../files: serve its parent folder
        top = path.parent if index else path
        name = f"d{self.count}"
        self.count += 1
        (self.root / name).symlink_to(top)
        rel = f"{name}/{path.name}/" if index else f"{name}/"
        return "http://127.0.0.1:{port}/" + rel

    def start(self) -> int:
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.server.server_address[1]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the build log shows pip's own lines
        pass


def pip_secrets(workdir: Path, served: Served) -> tuple[list[str], list[str]]:
    """Build secrets (``--secret`` arguments) carrying this machine's pip settings, and the
    strings that must not appear in the image."""
    settings = _pip_settings()
    cfg = configparser.ConfigParser()
    cfg["global"] = {}
    forbidden: list[str] = []
    secrets: list[str] = []
    for option in ("index-url", "extra-index-url", "find-links"):
        values = settings.get(option, [])
        if values:
            forbidden += values
            cfg["global"][option] = " ".join(served.url(v, index=option != "find-links") for v in values)
    cert = (settings.get("cert") or [os.environ.get("PIP_CERT", "")])[0]
    if cert and Path(cert).is_file():
        secrets += ["--secret", f"id=cacert,src={cert}"]
        cfg["global"]["cert"] = "/run/secrets/cacert"
        forbidden.append(cert)
    if served.count:
        cfg["global"]["trusted-host"] = "127.0.0.1"
    port = served.start()
    conf = workdir / "pip.conf"
    with conf.open("w") as fh:
        for option, value in cfg["global"].items():
            cfg["global"][option] = value.replace("{port}", str(port))
        cfg.write(fh)
    conf.chmod(0o600)
    forbidden.append(f"127.0.0.1:{port}")
    secrets += ["--secret", f"id=pipconf,src={conf}"]
    log(f"pip settings passed as build secrets: {', '.join(cfg['global'])} "
        f"({served.count} local folder(s) served on 127.0.0.1:{port} during the build)")
    return secrets, sorted(set(forbidden))


# ----------------------------------------------------------------------------- the image
def git_revision() -> str:
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                         text=True, timeout=30)
    if rev.returncode != 0:
        raise Failure(f"not a git checkout ({ROOT}): the image must record a real revision")
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=30).stdout.strip()
    return rev.stdout.strip() + ("+dirty" if dirty else "")


def build(cli: str, secrets: list[str], revision: str, version: str) -> float:
    t = time.monotonic()
    sh(["nice", "-n", "10", cli, "build", "--network", "host", "--progress", "plain",
        "--build-arg", f"BASE={BASE_TAG}", "--build-arg", "LOCK=constraints.txt",
        "--build-arg", f"EXTRAS={CPU_EXTRAS}", "--build-arg", f"GIT_REVISION={revision}",
        "--build-arg", f"VERSION={version}", *secrets, "-t", IMAGE_TAG, str(ROOT)],
       timeout=2400, env={**os.environ, "DOCKER_BUILDKIT": "1"})
    took = time.monotonic() - t
    log(f"image {IMAGE_TAG} built in {took:.0f} s")
    return took


def check_no_leak(cli: str, forbidden: list[str]) -> None:
    """No pip setting of this machine in the image: history, pip's view, files."""
    history = sh([cli, "history", "--no-trunc", "--format", "{{.CreatedBy}}", IMAGE_TAG],
                 timeout=60, capture=True, quiet=True).stdout
    leaked = [s for s in forbidden if s in history]
    if leaked:
        raise Failure(f"docker history of {IMAGE_TAG} contains {leaked}")
    conf = sh([cli, "run", "--rm", "--network", "none", "--entrypoint", "pip", IMAGE_TAG, "config", "list"],
              timeout=120, capture=True, quiet=True).stdout.strip()
    # the image's own ENV (no-cache-dir, disable-pip-version-check) is expected; nothing of
    # where or how this machine gets packages may be there
    host_keys = ("index-url", "extra-index-url", "find-links", "cert", "trusted-host", "constraint",
                 "client-cert", "proxy")
    bad = [line for line in conf.splitlines()
           if any(f".{k}=" in line for k in host_keys) or any(s in line for s in forbidden)]
    if bad:
        raise Failure(f"pip config list in the image shows this machine's settings:\n{conf}")
    pattern = " ".join(f"-e {shlex.quote(s)}" for s in forbidden)
    found = sh([cli, "run", "--rm", "--network", "none", "--entrypoint", "bash", IMAGE_TAG, "-c",
                f"find / -xdev -name pip.conf -not -path '/proc/*' 2>/dev/null; "
                f"grep -rIlF {pattern} /etc /opt/venv/pyvenv.cfg /opt/venv/bin /src /home /root /tmp "
                f"/cache /work 2>/dev/null; true"], timeout=300, capture=True, quiet=True).stdout.strip()
    if found:
        raise Failure(f"host pip settings found in the image's files:\n{found}")
    own = ", ".join(line.split(".", 1)[-1] for line in conf.splitlines()) or "nothing"
    log(f"no pip setting of this machine in the image ({len(forbidden)} strings checked in "
        f"`docker history --no-trunc`; `pip config list` shows only the image's own ENV: {own}; "
        f"no pip.conf; grep of /etc /opt/venv /src /home /root /tmp /cache /work finds none)")


def run_in_image(cli: str, out: Path, uid: int, mmlu: Path) -> list[tuple[str, float]]:
    """The commands, as UID:GID ``uid`` with no network; returns (command, seconds)."""
    for sub in ("results", "figures", "cache"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        os.chown(out / sub, uid, uid)
    base = [cli, "run", "--rm", "--network", "none", "--user", f"{uid}:{uid}",
            "-e", "HOTMESS_OFFLINE=1", "-e", "HF_HUB_OFFLINE=1",
            "-v", f"{out / 'results'}:/work/results", "-v", f"{out / 'figures'}:/work/figures",
            "-v", f"{out / 'cache'}:/cache", "-v", f"{mmlu}:/data/mmlu:ro", IMAGE_TAG]
    commands = [["--help"], ["plugins"]]
    commands += [["reproduce", "--scale", "cpu", "-e", name, *over] for name, over in RUNS]
    commands += [["paper"]]
    times = []
    for args in commands:
        t = time.monotonic()
        sh(["nice", "-n", "10", *base, *args], timeout=1500)
        times.append(("hotmess " + shlex.join(args), time.monotonic() - t))
    return times


def check_outputs(cli: str, out: Path, uid: int, revision: str) -> list[Path]:
    files = sorted(p for sub in ("results", "figures") for p in (out / sub).rglob("*"))
    cubes = [out / "results" / name / "cube.nc" for name, _ in RUNS]
    missing = [str(c) for c in cubes if not c.is_file()]
    figures = [p for p in files if p.parent == out / "figures" and p.suffix in (".pdf", ".png")]
    if missing:
        raise Failure(f"cubes missing on the bind mount: {missing}")
    if not figures:
        raise Failure(f"no figure (PDF/PNG) in {out / 'figures'}")
    wrong = [f"{p} (uid {p.stat().st_uid})" for p in files if p.stat().st_uid != uid or p.stat().st_gid != uid]
    if wrong:
        raise Failure(f"files not owned by {uid}:{uid}: {wrong[:10]}")
    # read with netCDF4 itself (not hotmess code) inside the image
    script = ("import json, netCDF4, sys; print(json.dumps({p: netCDF4.Dataset(p).getncattr('git_revision') "
              "for p in sys.argv[1:]}))")
    paths = [f"/work/results/{c.parent.name}/cube.nc" for c in cubes]
    got = json.loads(sh([cli, "run", "--rm", "--network", "none", "--user", f"{uid}:{uid}",
                         "-v", f"{out / 'results'}:/work/results:ro", "--entrypoint", "python", IMAGE_TAG,
                         "-c", script, *paths], timeout=120, capture=True, quiet=True).stdout)
    bad = {p: r for p, r in got.items() if r != revision}
    if bad:
        raise Failure(f"cubes record another git revision than {revision}: {bad}")
    log(f"{len(cubes)} cubes and {len(figures)} figure files on the bind mount, all {len(files)} "
        f"paths owned by {uid}:{uid}, every cube's git_revision = {revision}")
    return files


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uid", type=int, default=int(os.environ.get("HOTMESS_IMAGE_UID", "4242")),
                    help="UID (and GID) the container runs as; not the image's default 1000, to show "
                         "that any caller's UID works (default 4242)")
    ap.add_argument("--mmlu", default=os.environ.get("HOTMESS_MMLU_DIR", str(ROOT.parent / "shared/data/mmlu")))
    ap.add_argument("--docker", default=None, help="docker CLI to use (default: docker.io's)")
    ap.add_argument("--keep-daemon", action="store_true", help="leave a dockerd started here running")
    args = ap.parse_args(argv)
    mmlu = Path(args.mmlu).resolve()
    if not (mmlu / "test.jsonl").is_file():
        mmlu = Path("/work/shared/data/mmlu")
    if not (mmlu / "test.jsonl").is_file():
        print(f"image: no MMLU data at {args.mmlu} (test.jsonl + dev.jsonl; set HOTMESS_MMLU_DIR)",
              file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        print("image: needs root (installs Debian packages, starts dockerd, runs mmdebstrap)", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="hotmess-image-"))
    os.chmod(workdir, 0o755)
    daemon = served = None
    try:
        cli = ensure_packages(args.docker)
        daemon = Daemon(cli, workdir)
        daemon.start()
        base_s = ensure_base(cli, workdir)
        served = Served(workdir)
        secrets, forbidden = pip_secrets(workdir, served)
        revision = git_revision()
        version = subprocess.run([sys.executable, "-c", "import tomllib;print(tomllib.load(open("
                                  f"{str(ROOT / 'pyproject.toml')!r},'rb'))['project']['version'])"],
                                 capture_output=True, text=True, timeout=30).stdout.strip() or "unknown"
        build_s = build(cli, secrets, revision, version)
        served.stop()
        (workdir / "pip.conf").unlink()
        size = int(sh([cli, "image", "inspect", "-f", "{{.Size}}", IMAGE_TAG], timeout=60, capture=True,
                      quiet=True).stdout.strip())
        labels = json.loads(sh([cli, "image", "inspect", "-f", "{{json .Config.Labels}}", IMAGE_TAG],
                               timeout=60, capture=True, quiet=True).stdout)
        if labels.get("org.opencontainers.image.revision") != revision:
            raise Failure(f"label org.opencontainers.image.revision is {labels.get('org.opencontainers.image.revision')!r}, "
                          f"not {revision}")
        check_no_leak(cli, forbidden)
        out = workdir / "out"
        out.mkdir()
        times = run_in_image(cli, out, args.uid, mmlu)
        files = check_outputs(cli, out, args.uid, revision)
        sh([cli, "image", "prune", "-f"], timeout=300, capture=True, quiet=True)
        print("\n===== nox -s image: summary =====")
        base_note = f"built in {base_s:.0f} s" if base_s else "cached (made by an earlier run)"
        print(f"base image      {BASE_TAG}: {base_note}")
        print(f"image           {IMAGE_TAG}: built in {build_s:.0f} s, size {size / 1e9:.2f} GB "
              f"({size / 2**30:.2f} GiB)")
        print(f"revision        {revision} (label and every cube)")
        print(f"container user  {args.uid}:{args.uid}, --network none, MMLU {mmlu} read-only")
        for cmd, secs in times:
            print(f"  {secs:6.1f} s  {cmd}")
        print("files written on the bind mounts (results/, figures/):")
        for p in files:
            if p.is_file() and "hydra" not in p.parts:
                print(f"  {p.stat().st_size:>10}  {p.relative_to(out)}")
        n_hydra = sum(1 for p in files if p.is_file() and "hydra" in p.parts)
        print(f"  (+ {n_hydra} Hydra run-record files under results/*/hydra/)")
        print(f"total           {time.monotonic() - t0:.0f} s")
        return 0
    except Failure as exc:
        print(f"image: FAILED: {exc}", file=sys.stderr)
        if daemon is not None:
            daemon.print_log()
        return 1
    finally:
        if served is not None:
            served.stop()
        if daemon is not None and not args.keep_daemon:
            daemon.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
