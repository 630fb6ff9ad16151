"""Run folders are never replaced silently, have one writer, and say when they cannot be written."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from digitnet.train.run_folder import (
    RunLock,
    check_out_dir,
    check_writable,
    clear_run,
    inspect_run,
    write_error,
)
from digitnet.utils import DigitnetError


def _finished_run(path, arch="fastnet", epochs=20, accuracy=0.997):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"arch": arch, "epochs": epochs}))
    (path / "model.json").write_text(json.dumps({"arch": arch, "metrics": {"test_accuracy": accuracy}}))
    (path / "history.csv").write_text("epoch,train_loss\n" + "".join(f"{e},0.1\n" for e in range(1, epochs + 1)))
    (path / "last.pt").write_bytes(b"checkpoint")
    return path


def test_a_finished_run_is_refused_with_what_it_holds_and_the_choices(tmp_path):
    run = _finished_run(tmp_path / "x")
    with pytest.raises(DigitnetError) as info:
        check_out_dir(run, resume=False, overwrite=False)
    message = str(info.value)
    assert "\n" not in message
    for expected in ("a finished run", "fastnet", "20/20 epochs", "99.70%", "--resume", "--overwrite", "--out"):
        assert expected in message


def test_an_interrupted_run_is_refused_too(tmp_path):
    run = tmp_path / "x"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"arch": "mlp", "epochs": 10}))
    (run / "history.csv").write_text("epoch\n1\n2\n")
    (run / "last.pt").write_bytes(b"checkpoint")
    with pytest.raises(DigitnetError, match=r"an interrupted run \(mlp, 2/10 epochs\)"):
        check_out_dir(run, resume=False, overwrite=False)


def test_a_stopped_run_with_a_saved_model_is_called_interrupted(tmp_path):
    run = _finished_run(tmp_path / "x", epochs=20, accuracy=0.99)
    (run / "model.json").write_text(json.dumps({"arch": "fastnet", "metrics": {"test_accuracy": 0.99,
                                                                                "interrupted": True}}))
    summary = inspect_run(run)
    assert not summary.finished
    assert summary.describe() == "an interrupted run (fastnet, 20/20 epochs, test accuracy 99.00%)"


def test_resume_and_overwrite_are_accepted_and_a_new_or_unrelated_folder_is_fine(tmp_path):
    run = _finished_run(tmp_path / "x")
    assert check_out_dir(run, resume=True, overwrite=False).finished
    assert check_out_dir(run, resume=False, overwrite=True).arch == "fastnet"
    assert check_out_dir(tmp_path / "new", resume=False, overwrite=False) is None
    other = tmp_path / "notes"
    other.mkdir()
    (other / "readme.txt").write_text("mine")
    assert check_out_dir(other, resume=False, overwrite=False) is None
    with pytest.raises(DigitnetError, match="contradict"):
        check_out_dir(run, resume=True, overwrite=True)
    with pytest.raises(DigitnetError, match="last.pt not found"):
        check_out_dir(tmp_path / "new", resume=True, overwrite=False)


def test_clear_run_removes_only_what_a_run_writes(tmp_path):
    run = _finished_run(tmp_path / "x")
    (run / "tensorboard").mkdir()
    (run / "tensorboard" / "events").write_text("e")
    (run / "mine.txt").write_text("keep me")
    clear_run(run)
    assert sorted(p.name for p in run.iterdir()) == ["mine.txt"]
    assert inspect_run(run) is None


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(DigitnetError, match=rf"another digitnet process \(PID {os.getpid()}\)"):
            RunLock(tmp_path).acquire()
    with RunLock(tmp_path):  # released: the next writer gets it
        pass
    assert not (tmp_path / ".lock").exists()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    holder = textwrap.dedent(f"""
        import sys, time
        from digitnet.train.run_folder import RunLock
        RunLock({str(tmp_path)!r}).acquire()
        print("locked", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(DigitnetError, match=f"PID {proc.pid}"):
            RunLock(tmp_path).acquire()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert (tmp_path / ".lock").exists()  # the dead writer's file is still there ...
    with RunLock(tmp_path) as lock:  # ... but its lock died with it
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
        assert lock.path == tmp_path / ".lock"


def test_check_writable_names_the_folder_and_the_cause(tmp_path):
    check_writable(tmp_path / "a" / "b", needed_bytes=1)
    assert (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the probe file is gone
    with pytest.raises(DigitnetError, match="MiB free"):
        check_writable(tmp_path, needed_bytes=1 << 62)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DigitnetError, match=f"cannot write {blocker / 'sub'}"):
        check_writable(blocker / "sub")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_check_writable_refuses_a_read_only_folder(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(DigitnetError, match="permission denied"):
            check_writable(tmp_path)
    finally:
        tmp_path.chmod(0o700)


def test_write_error_is_one_line_with_path_and_cause():
    error = write_error(OSError(errno.ENOSPC, "No space left on device"), "runs/x/last.pt", "last.pt is intact")
    assert str(error) == "cannot write runs/x/last.pt: no space left on the device; last.pt is intact"
    assert "read-only" in str(write_error(OSError(errno.EROFS, "Read-only file system"), "p"))
