"""Run folders: what one holds, who is writing it, and whether it can be written at all.

A trained model can be hours of CPU, so a run folder is never replaced silently:

- :func:`check_out_dir` refuses to start a new run in a folder that holds one (finished or interrupted)
  unless the user says ``--resume`` or ``--overwrite``, and names what is there;
- :class:`RunLock` lets one process write a folder at a time. It is an ``flock`` on ``.lock``: the kernel
  drops it when the holder dies, even by ``kill -9``, so a crashed run's lock is stale by construction and
  ``--resume`` simply takes it over;
- :func:`check_writable` finds a read-only, forbidden or full disk before the first epoch is spent, and
  :func:`write_error` turns a failed write later on into one line that names the path and the cause.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from digitnet.utils import DigitnetError

LOCK_FILE = ".lock"
# What a run writes (engine, callbacks, report): --overwrite removes these and nothing else, so pointing --out
# at a folder with other files in it never deletes them.
RUN_FILES = ("model.safetensors", "model.json", "config.json", "environment.json", "history.csv", "metrics.json",
             "last.pt", "best.pt", "curves.png", "confusion.png", "errors.png", "samples.png", "report.html")
RUN_FOLDERS = ("tensorboard",)


@dataclass
class RunSummary:
    """What a run folder holds, read from its small files (never from a checkpoint)."""

    path: Path
    arch: str | None
    epochs_done: int
    epochs: int | None
    test_accuracy: float | None
    finished: bool  # trained to its end; otherwise stopped early (Ctrl-C, SIGTERM, a crash) and resumable

    def describe(self) -> str:
        state = "a finished run" if self.finished else "an interrupted run"
        parts = [self.arch or "unknown architecture",
                 f"{self.epochs_done}/{self.epochs} epochs" if self.epochs else f"{self.epochs_done} epochs"]
        if self.test_accuracy is not None:
            parts.append(f"test accuracy {self.test_accuracy:.2%}")
        return f"{state} ({', '.join(parts)})"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _epochs_done(path: Path) -> int:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return sum(1 for _ in csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError):
        return 0


def inspect_run(run_dir: str | os.PathLike) -> RunSummary | None:
    """The run in ``run_dir``, or None when it holds none (missing, empty, or only other files)."""
    run_dir = Path(run_dir)
    saved = (run_dir / "model.json").is_file()
    if not saved and not (run_dir / "last.pt").is_file():
        return None
    config = _read_json(run_dir / "config.json")
    model = _read_json(run_dir / "model.json")
    metrics = model.get("metrics") if isinstance(model.get("metrics"), dict) else _read_json(run_dir / "metrics.json")
    # A stopped run saves its model too (the weights as they stood), marked interrupted in its metrics.
    finished = saved and not metrics.get("interrupted", False)
    accuracy = metrics.get("test_accuracy") if saved else None
    return RunSummary(
        path=run_dir, arch=model.get("arch") or config.get("arch"), epochs_done=_epochs_done(run_dir / "history.csv"),
        epochs=config.get("epochs"), test_accuracy=accuracy if isinstance(accuracy, (int, float)) else None,
        finished=finished,
    )


def check_out_dir(run_dir: str | os.PathLike, resume: bool, overwrite: bool) -> RunSummary | None:
    """Refuse to start a new run over an existing one unless asked to; returns what is there.

    ``resume`` continues the run (it needs a ``last.pt``); ``overwrite`` replaces it (see :func:`clear_run`,
    called once the folder is locked). Neither: a folder holding a run is an error naming it and the choices.
    """
    run_dir = Path(run_dir)
    if resume and overwrite:
        raise DigitnetError("--resume and --overwrite contradict each other: continue the run or replace it")
    if run_dir.exists() and not run_dir.is_dir():
        raise DigitnetError(f"--out {run_dir}: exists and is not a folder")
    existing = inspect_run(run_dir)
    if resume:
        if not (run_dir / "last.pt").is_file():
            raise DigitnetError(f"--resume: {run_dir / 'last.pt'} not found; pass the --out of the run to resume")
    elif existing is not None and not overwrite:
        raise DigitnetError(f"--out {run_dir} already holds {existing.describe()}: add --resume to continue it, "
                            "--overwrite to replace it, or choose another --out")
    return existing


def clear_run(run_dir: str | os.PathLike) -> None:
    """Remove what a previous run wrote into ``run_dir`` (``--overwrite``), leaving any other file alone."""
    run_dir = Path(run_dir)
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for name in RUN_FOLDERS:
        if (run_dir / name).is_dir():
            shutil.rmtree(run_dir / name)


class RunLock:
    """One writer per run folder: an exclusive ``flock`` on ``run_dir/.lock`` holding the writer's PID."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        import fcntl  # POSIX only; imported here so the module still imports elsewhere

        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise DigitnetError(f"--out {self.run_dir} is being written by another digitnet process (PID "
                                    f"{holder}); wait for it to finish, stop it, or choose another --out") from None
            # The holder before us may have removed the file between our open and our lock: then we locked a
            # name that no longer exists, and must lock the new file instead.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        import fcntl

        self.path.unlink(missing_ok=True)  # while still locked, so nobody locks the name we remove
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


WRITE_CAUSES = {  # the errors of a write that the user can fix, in words
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def write_error(exc: OSError, path: str | os.PathLike, earlier: str | None = None) -> DigitnetError:
    """A one-line error for a failed write: the path, the cause, and what is still safe."""
    cause = WRITE_CAUSES.get(exc.errno or 0, exc.strerror or str(exc))
    message = f"cannot write {path}: {cause}"
    if earlier:
        message += f"; {earlier}"
    return DigitnetError(message)


def check_writable(run_dir: str | os.PathLike, needed_bytes: int = 0) -> None:
    """Fail now, in one line, if ``run_dir`` cannot be created or written or has no room for ``needed_bytes``."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=run_dir, prefix=".write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise write_error(exc, run_dir, "choose another --out") from None
    free = shutil.disk_usage(run_dir).free
    if free < needed_bytes:
        raise DigitnetError(
            f"cannot write {run_dir}: only {free / 2**20:.1f} MiB free, and a checkpoint of this "
                            f"model needs about {needed_bytes / 2**20:.1f} MiB; free some space or choose another --out"
        )


def checkpoint_bytes(num_parameters: int) -> int:
    """A generous estimate of one ``last.pt``: weights, optimizer moments, the best weights, and headroom."""
    return 4 * num_parameters * 5 + (1 << 20)
