"""Who is writing a cube directory: run records, chunk claims and the directory lock.

Many processes may write one cube at once — a user's second terminal, or the jobs of a
SLURM array on different nodes of a shared file system (``docs/design.md``, "Storage").
The rules, built on ``filelock`` (``flock``; on NFSv4 these are POSIX locks the server
releases when a client dies):

* **Directory lock** ``<root>/.locks/dir.lock``: held for moments only, while a run checks
  and registers its settings and while the cube is assembled (so that assemblies
  serialise, and the last one to run sees every part).
* **Run records** ``<root>/.locks/runs/<host>-<pid>.{lock,json}``: each live run holds its
  ``.lock`` for its whole life and describes itself in the ``.json`` (host, PID, start time,
  command, the digest and values of its settings). A new run with *other* settings is
  refused at once, naming the holder; one with the *same* settings shares the work. A record
  whose lock can be taken belongs to a dead process: it is stale and removed.
* **Chunk claims** ``<root>/.locks/claims/<cell>__<chunk>.lock``: a run samples a chunk only
  while it holds the chunk's claim and the part does not exist yet; a chunk claimed by a live
  run is skipped (that run writes it), so two runs never both sample one chunk.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

LOCK_DIR = ".locks"


class LockError(RuntimeError):
    """Another live run holds what this run needs (the message names its host and PID)."""


@dataclass(frozen=True)
class Holder:
    """A live (or stale) run record."""

    host: str
    pid: int
    started: str
    command: str
    digest: str
    settings: dict[str, Any]
    path: Path

    def describe(self) -> str:
        return f"host {self.host} pid {self.pid} (started {self.started}: {self.command})"


def _me() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def _this_command() -> str:
    """This process's command line as a user typed it (``hotmess run`` sets argv[0] to
    ``"hotmess run"`` before Hydra parses the overrides)."""
    prog = sys.argv[0] if sys.argv and sys.argv[0].startswith("hotmess") else "hotmess"
    return " ".join([prog, *sys.argv[1:]])[:500]


def _try(lock: FileLock) -> bool:
    try:
        lock.acquire(timeout=0)
        return True
    except Timeout:
        return False


class Locks:
    """The lock files of one cube directory.

    Parameters
    ----------
    root : path
        ``<out_dir>/<experiment>`` (created if missing).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.dir = self.root / LOCK_DIR
        self._run_lock: FileLock | None = None
        self._claims: dict[str, FileLock] = {}

    def _mkdirs(self) -> None:
        for d in (self.dir, self.dir / "runs", self.dir / "claims"):
            d.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def directory(self, timeout: float = 120.0) -> Iterator[None]:
        """Hold the directory lock (bounded wait).

        Raises
        ------
        LockError
            Not obtained within ``timeout`` seconds; names the live runs.
        """
        self._mkdirs()
        lock = FileLock(str(self.dir / "dir.lock"), is_singleton=False)
        try:
            lock.acquire(timeout=timeout)
        except Timeout as exc:
            live = ", ".join(h.describe() for h in self.live_runs()) or "no live run found"
            raise LockError(f"{self.root}: the directory lock was not free within {timeout:.0f} s "
                            f"(live runs: {live})") from exc
        try:
            yield
        finally:
            lock.release()

    # ------------------------------------------------------------------ run records
    def live_runs(self, *, clean: bool = True) -> list[Holder]:
        """Records of runs that are alive now (other than this process); stale records of dead
        processes are removed when ``clean``."""
        out = []
        me = _me()
        for meta in sorted((self.dir / "runs").glob("*.json")) if (self.dir / "runs").exists() else []:
            try:
                rec = json.loads(meta.read_text())
            except (OSError, ValueError):
                rec = {}
            if (rec.get("host"), rec.get("pid")) == me:
                continue
            lock = FileLock(str(meta.with_suffix(".lock")), is_singleton=False)
            if _try(lock):  # nobody holds it: the process that wrote the record is gone
                lock.release()
                if clean:
                    meta.unlink(missing_ok=True)
                    meta.with_suffix(".lock").unlink(missing_ok=True)
                continue
            out.append(Holder(str(rec.get("host", "?")), int(rec.get("pid", -1)), str(rec.get("started", "?")),
                              str(rec.get("command", "?")), str(rec.get("digest", "")),
                              dict(rec.get("settings", {})), meta))
        return out

    def register(self, digest: str, settings: dict[str, Any], command: str | None = None) -> None:
        """Record this process as a live run with these settings (held until :meth:`release`)."""
        self._mkdirs()
        host, pid = _me()
        base = self.dir / "runs" / f"{host}-{pid}"
        lock = FileLock(str(base.with_suffix(".lock")), is_singleton=False)
        lock.acquire(timeout=10)
        self._run_lock = lock
        record = {"host": host, "pid": pid, "digest": digest, "settings": settings,
                  "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                  "command": command or _this_command()}
        tmp = base.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, sort_keys=True, default=str))
        tmp.replace(base.with_suffix(".json"))

    # ------------------------------------------------------------------ chunk claims
    def claim(self, key: str) -> bool:
        """Claim one chunk (``key`` names cell and chunk); False if a live run holds it."""
        self._mkdirs()
        if key in self._claims:
            return True
        lock = FileLock(str(self.dir / "claims" / f"{key}.lock"), is_singleton=False)
        if not _try(lock):
            return False
        self._claims[key] = lock
        host, pid = _me()
        (self.dir / "claims" / f"{key}.json").write_text(json.dumps({"host": host, "pid": pid}))
        return True

    def claimed_by_live_runs(self) -> set[str]:
        """Keys of the chunks live runs hold claims on right now (read from their holder
        files; nothing is locked, so this never disturbs a run)."""
        live = {(h.host, h.pid) for h in self.live_runs(clean=False)} | {_me()}
        out = set()
        for meta in (self.dir / "claims").glob("*.json") if (self.dir / "claims").exists() else []:
            try:
                rec = json.loads(meta.read_text())
            except (OSError, ValueError):
                continue
            if (rec.get("host"), rec.get("pid")) in live:
                out.add(meta.stem)
        return out

    def unclaim(self, key: str) -> None:
        lock = self._claims.pop(key, None)
        if lock is not None:
            (self.dir / "claims" / f"{key}.json").unlink(missing_ok=True)
            lock.release()

    def release(self) -> None:
        """Release every claim and this run's record (also called at interpreter exit)."""
        for key in list(self._claims):
            self.unclaim(key)
        if self._run_lock is not None:
            host, pid = _me()
            base = self.dir / "runs" / f"{host}-{pid}"
            base.with_suffix(".json").unlink(missing_ok=True)
            self._run_lock.release()
            base.with_suffix(".lock").unlink(missing_ok=True)
            self._run_lock = None

    def __enter__(self) -> Locks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
