"""Run records and chunk claims between real processes (a live holder, a killed one)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hotmess.core import fingerprint
from hotmess.core.locks import LockError, Locks

HOLDER = textwrap.dedent("""
    import sys, time
    from hotmess.core.locks import Locks
    locks = Locks(sys.argv[1])
    locks.register("abc", {"seed": 1}, command="hotmess run seed=1")
    assert locks.claim("m__s__16__chunk00000")
    print("ready", flush=True)
    time.sleep(120)
""")


@pytest.fixture
def holder(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_live_holder_is_seen_and_its_claims_are_respected(tmp_path, holder):
    locks = Locks(tmp_path)
    live = locks.live_runs()
    assert [(h.pid, h.settings, h.digest) for h in live] == [(holder.pid, {"seed": 1}, "abc")]
    assert "hotmess run seed=1" in live[0].describe() and str(holder.pid) in live[0].describe()
    assert not locks.claim("m__s__16__chunk00000")  # the other process samples this chunk
    assert locks.claim("m__s__16__chunk00001")
    locks.release()


def test_a_killed_holder_leaves_a_stale_record_that_is_detected(tmp_path, holder):
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    records = list((tmp_path / ".locks" / "runs").glob("*.json"))
    assert len(records) == 1  # the record is still on disk ...
    locks = Locks(tmp_path)
    assert locks.live_runs() == []  # ... but its lock is free: stale, and removed
    assert list((tmp_path / ".locks" / "runs").glob("*.json")) == []
    assert locks.claim("m__s__16__chunk00000")  # the dead process's claim is free again
    locks.release()


def test_register_and_release_leave_no_record(tmp_path, monkeypatch):
    # argv as `hotmess run` leaves it for Hydra: the recorded command keeps the "run"
    monkeypatch.setattr("sys.argv", ["hotmess run", "task.data_dir=/d", "draws=2"])
    with Locks(tmp_path) as locks:
        locks.register("d", {"seed": 0})
        rec = json.loads(next((tmp_path / ".locks" / "runs").glob("*.json")).read_text())
        assert rec["pid"] == os.getpid() and rec["settings"] == {"seed": 0}
        assert rec["command"] == "hotmess run task.data_dir=/d draws=2"
        assert locks.live_runs() == []  # this process is not "another run"
    assert list((tmp_path / ".locks" / "runs").glob("*")) == []


def test_directory_lock_times_out_naming_live_runs(tmp_path, holder):
    script = ("import sys, time\nfrom hotmess.core.locks import Locks\n"
              "with Locks(sys.argv[1]).directory():\n    print('in', flush=True)\n    time.sleep(60)\n")
    other = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "in"
        t0 = time.monotonic()
        with pytest.raises(LockError, match=f"pid {holder.pid}"):
            with Locks(tmp_path).directory(timeout=1):
                pass
        assert time.monotonic() - t0 < 10
    finally:
        other.kill()
        other.wait(timeout=10)
    with Locks(tmp_path).directory(timeout=5):  # released by the kill
        pass


def test_fingerprint_diff_names_only_changed_keys(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    old = fingerprint.make({"seed": 0, "task": {"name": "mmlu", "data_dir": str(data)},
                            "sampling": {"temperature": 1.0, "top_p": 1.0}}, {"q1": "a", "q2": "b"})
    same_dir_other_path = str(data / ".." / "data")
    new = fingerprint.make({"seed": 0, "task": {"name": "mmlu", "data_dir": same_dir_other_path},
                            "sampling": {"temperature": 0.7, "top_p": 1.0}}, {"q1": "a", "q2": "b"})
    assert fingerprint.diff(old, new) == ["settings.sampling.temperature: 1.0 -> 0.7"]
    edited = fingerprint.make(old["settings"], {"q1": "a", "q2": "c"})
    assert fingerprint.diff(old, edited) == [
        "requests differ for question(s) ['q2'] (data files, few-shot pool or prompt template changed)"]
    assert fingerprint.diff(None, new) == ["written before fingerprints (hotmess 0.1)"]
    assert fingerprint.loads(fingerprint.dumps(old)) == old


def test_canonical_path_writes_home_as_tilde(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "mmlu").mkdir()
    assert fingerprint.canonical_path(str(tmp_path / "mmlu")) == "~/mmlu"
    assert fingerprint.canonical_path("not/a/path/at/all") == "not/a/path/at/all"
    assert Path(fingerprint.canonical_path(".")).is_absolute()
