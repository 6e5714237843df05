"""One trainer per run folder: real training processes, a real kill -9, real lock files."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from helpers import REPO, one_line_error, run_cli, tiny_sets, write_corpus
from vqstudio.train.run_lock import LOCK_FILE, RunBusyError, RunLock, read_lock


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), files=2)


def _wait_for(predicate, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)



def test_a_second_trainer_is_refused_naming_the_holder_and_the_lock_goes_with_it(audio, tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "vqstudio", "train", "--data", str(audio), "--run", str(run),
         "--steps", "100000", *tiny_sets()],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        metrics = run / "metrics.csv"
        _wait_for(lambda: metrics.is_file() and len(metrics.read_text().splitlines()) > 2, "training")
        record = read_lock(run)
        assert record["pid"] == first.pid and record["host"] == socket.gethostname()
        assert time.time() - record["heartbeat"] < 60

        error = one_line_error(run_cli("train", "--run", str(run), "--steps", "3"))
        assert f"pid {first.pid} on host {socket.gethostname()}" in error
        assert "last heard from" in error and "--from" in error
        rows = len(metrics.read_text().splitlines())
        assert first.poll() is None  # the refused one did not disturb the running one
    finally:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert len(metrics.read_text().splitlines()) >= rows
    assert not (run / LOCK_FILE).exists()  # released on close


def test_a_killed_holders_lock_is_taken_over_and_logged(audio, tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom vqstudio.train.run_lock import RunLock\n"
         "lock = RunLock.acquire(sys.argv[1])\nprint('held', flush=True)\ntime.sleep(300)\n",
         str(run)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    refused = one_line_error(run_cli("train", "--data", str(audio), "--run", str(run), "--steps", "2",
                                      *tiny_sets()))
    assert f"pid {holder.pid}" in refused
    assert not (run / "config.toml").exists()  # refused before anything was written
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    holder.stdout.close()
    assert read_lock(run)["pid"] == holder.pid  # the record stays behind a kill -9

    result = run_cli("train", "--data", str(audio), "--run", str(run), "--steps", "2", *tiny_sets())
    assert result.returncode == 0, result.stderr
    assert f"took over the stale lock of pid {holder.pid}" in result.stdout
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    taken = [e for e in events if e["kind"] == "lock_taken_over"]
    assert len(taken) == 1 and f"pid {holder.pid}" in taken[0]["note"]


def _write_foreign_lock(run, heard_seconds_ago: float) -> None:
    run.mkdir(parents=True, exist_ok=True)
    now = time.time()
    record = {"pid": 4242, "host": "gpu-node-elsewhere", "started": now - 3600,
              "heartbeat": now - heard_seconds_ago}
    (run / LOCK_FILE).write_text(json.dumps(record) + "\n")


def test_a_lock_from_another_host_holds_while_it_beats_and_goes_stale_after(tmp_path):
    live, stale = tmp_path / "live", tmp_path / "stale"
    _write_foreign_lock(live, heard_seconds_ago=3)
    with pytest.raises(RunBusyError, match="pid 4242 on host gpu-node-elsewhere.*last heard from 3 s ago"):
        RunLock.acquire(live)
    _write_foreign_lock(stale, heard_seconds_ago=600)
    with RunLock.acquire(stale) as lock:
        assert "gpu-node-elsewhere" in lock.taken_over and "10 min ago" in lock.taken_over
        assert read_lock(stale)["pid"] == os.getpid()


def test_one_holder_per_folder_even_in_one_process_and_the_heartbeat_moves(tmp_path):
    lock = RunLock.acquire(tmp_path / "run", heartbeat_seconds=0.0)
    first = read_lock(tmp_path / "run")
    assert lock.taken_over is None and first["pid"] == os.getpid()
    with pytest.raises(RunBusyError, match=f"pid {os.getpid()}"):
        RunLock.acquire(tmp_path / "run")
    time.sleep(0.02)
    lock.beat()
    assert read_lock(tmp_path / "run")["heartbeat"] > first["heartbeat"]
    assert (tmp_path / "run" / LOCK_FILE).stat().st_size == 512  # rewritten in place, same size
    lock.release()
    lock.release()
    assert not (tmp_path / "run" / LOCK_FILE).exists()
    again = RunLock.acquire(tmp_path / "run")
    assert again.taken_over is None
    again.release()
