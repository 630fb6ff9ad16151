"""Folders of pictures: worker processes, answers streamed in input order, bad files, Ctrl-C, progress bar."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from folder_helpers import die_on_three, fail_on_three, slow_first, slow_zero
from photo_helpers import digit_photo, number_ink, on_paper
from PIL import Image
from typer.testing import CliRunner

from digitnet.cli import app, pictures
from digitnet.vision import batch
from digitnet.vision.io import expand_inputs

runner = CliRunner()
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def folder(tmp_path_factory, clean_digits) -> tuple[Path, list[int | None]]:
    """20 pictures (enough for workers): digits and numbers, one corrupt file among them; and the digit of each."""
    directory = tmp_path_factory.mktemp("folder")
    truth: list[int | None] = []
    for k in range(20):
        path = directory / f"{k:02d}.jpg"
        if k == 7:
            path.write_bytes(b"\xff\xd8\xff\xe0 this JPEG stops here")
            truth.append(None)
        elif k in (4, 13):
            Image.fromarray(on_paper(number_ink([clean_digits[d] for d in (k % 10, 5, 1)], height=50))).save(path)
            truth.append(None)
        else:
            Image.fromarray(digit_photo(clean_digits[k % 10], height=60 + 4 * k)).convert("RGB").save(path)
            truth.append(k % 10)
    return directory, truth


@pytest.fixture
def workers_used(monkeypatch) -> list[int]:
    """The worker counts the recognizer asked for: proof that a test went through the parallel path."""
    import digitnet.recognizer

    seen: list[int] = []
    original = digitnet.recognizer.ordered_batches

    def spy(function, items, workers, *args, **kwargs):
        seen.append(workers)
        return original(function, items, workers, *args, **kwargs)

    monkeypatch.setattr(digitnet.recognizer, "ordered_batches", spy)
    return seen


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_corrupt_file_among_good_streams_every_line_in_order_and_exits_1(folder, workers_used):
    directory, truth = folder
    result = runner.invoke(app, ["predict", "--json", "--workers", "2", str(directory)])
    assert workers_used == [2]
    assert result.exit_code == 1, result.output
    answers = json_lines(result.stdout)
    assert [a["path"] for a in answers] == expand_inputs([str(directory)])
    assert "07.jpg: the image data is damaged or truncated" in answers[7]["error"]
    assert [a["error"] is None for a in answers] == [k != 7 for k in range(20)]
    assert [a["digit"] for a in answers] == truth
    assert "digits found" in answers[4]["note"] and "digits found" in answers[13]["note"]


def test_read_folder_with_workers_streams_in_order_and_exits_1(folder, workers_used):
    directory, _ = folder
    result = runner.invoke(app, ["read", "--json", "--workers", "2", str(directory)])
    assert workers_used == [2]
    assert result.exit_code == 1, result.output
    answers = json_lines(result.stdout)
    assert [a["path"] for a in answers] == expand_inputs([str(directory)])
    assert answers[7]["error"] and all(a["error"] is None for k, a in enumerate(answers) if k != 7)
    assert answers[4]["text"] == "451" and answers[13]["text"] == "351"


def test_answers_with_workers_equal_answers_in_process(folder, workers_used):
    from digitnet.recognizer import Recognizer

    paths = expand_inputs([str(folder[0])])
    with Recognizer.from_pretrained() as recognizer:  # its own: the workers it starts stay until it is closed
        parallel = list(recognizer.predict_many(paths, top_k=3, workers=2))
        alone = list(recognizer.predict_many(paths, top_k=3, workers=0))
        read_parallel = list(recognizer.read_many(paths, workers=2))
        read_alone = list(recognizer.read_many(paths, workers=0))
    assert parallel == alone and len(alone) == 20
    assert [(a["path"], a["text"], a["error"], a["note"]) for a in read_parallel] == \
        [(a["path"], a["text"], a["error"], a["note"]) for a in read_alone]
    for a, b in zip(read_parallel, read_alone, strict=True):
        assert [d["box"] for d in a["digits"]] == [d["box"] for d in b["digits"]]
        assert np.allclose([d["confidence"] for d in a["digits"]], [d["confidence"] for d in b["digits"]], atol=1e-5)
    assert workers_used == [2, 0, 2, 0]


def test_order_is_input_order_when_an_early_item_is_slow():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        results, threads_meanwhile = [], set()
        for part in batch.ordered_batches(slow_first, range(40), workers=2, chunk=1):
            results.extend(part)
            threads_meanwhile.add(torch.get_num_threads())
        assert threads_meanwhile == {1} and torch.get_num_threads() == 2  # the workers have the cores, then it is back
    finally:
        torch.set_num_threads(threads)
    assert [item for item, _, _ in results] == list(range(40))
    done = {item: when for item, when, _ in results}
    assert max(done.values()) == done[0]  # the slow one really finished last: the order was restored
    assert os.getpid() not in {pid for _, _, pid in results} and len({pid for _, _, pid in results}) == 2


def test_a_failing_function_raises_in_the_parent():
    with pytest.raises(ValueError, match="three is not allowed"):
        list(batch.ordered_batches(fail_on_three, range(20), workers=2, chunk=1))


def test_a_dying_worker_is_one_error_line_naming_the_pictures():
    from digitnet.utils import DigitnetError

    with pytest.raises(DigitnetError, match=r"a worker process died \(out of memory\?\) while reading .*3"):
        list(batch.ordered_batches(die_on_three, range(20), workers=2, chunk=1))


def test_batches_are_bounded_and_grouped():
    parts = list(batch.ordered_batches(abs, range(-50, 0), workers=0))
    assert [x for part in parts for x in part] == [abs(i) for i in range(-50, 0)]
    assert max(len(part) for part in parts) <= batch.IN_PROCESS_BATCH


@pytest.mark.parametrize(("workers", "items", "expected"), [
    (None, batch.MIN_PARALLEL, batch.default_workers()), (None, batch.MIN_PARALLEL - 1, 0),  # automatic
    (0, 100, 0), (1, 100, 0), (4, 100, 4), (4, 3, 3), (8, 20, 8), (4, 1, 0)])  # asked for
def test_worker_count(workers, items, expected):
    assert batch.worker_count(workers, items) == (expected if expected > 1 else 0)


@pytest.fixture
def pools_started(monkeypatch) -> list:
    """Every WorkerPool the recognizer starts."""
    import digitnet.recognizer

    started = []

    class Spy(batch.WorkerPool):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(digitnet.recognizer, "WorkerPool", Spy)
    return started


def test_one_pool_serves_consecutive_calls(folder, pools_started):
    from digitnet.recognizer import Recognizer

    paths = expand_inputs([str(folder[0])])
    with Recognizer.from_pretrained() as recognizer:
        first = list(recognizer.predict_many(paths, workers=2))
        second = list(recognizer.predict_many(paths[:5], workers=2))  # few files: the running pool still serves
        read = list(recognizer.read_many(paths, workers=2))
        assert len(pools_started) == 1 and pools_started[0].workers == 2
        assert first[:5] == second and len(read) == 20
    assert pools_started[0]._executor is None  # closed with the recognizer


def test_workers_start_before_the_model_loads_and_serve_the_folder(folder, pools_started, monkeypatch):
    import digitnet.recognizer
    from digitnet.recognizer import Recognizer

    events = []
    load = digitnet.recognizer.load_model
    monkeypatch.setattr(digitnet.recognizer, "load_model",
                        lambda *a, **k: events.append(f"load after {len(pools_started)} pool(s)") or load(*a, **k))
    with Recognizer.from_pretrained(workers=2) as recognizer:
        assert events == ["load after 1 pool(s)"] * 2  # the digit model and the line model
        answers = list(recognizer.predict_many(expand_inputs([str(folder[0])])))  # automatic: the started pool
    assert len(pools_started) == 1 and [a["digit"] for a in answers] == folder[1]


def test_a_small_folder_is_read_in_this_process(folder, recognizer, pools_started, workers_used):
    paths = expand_inputs([str(folder[0])])  # 20 files: fewer than starting workers repays
    answers = list(recognizer.predict_many(paths)) + list(recognizer.read_many(paths))
    assert pools_started == [] and workers_used == [0, 0] and len(answers) == 40
    result = runner.invoke(app, ["predict", "--json", str(folder[0])])
    assert pools_started == [] and len(json_lines(result.stdout)) == 20


def test_no_progress_bar_when_not_a_terminal(folder, monkeypatch):
    directory, _ = folder
    result = runner.invoke(app, ["predict", "--workers", "0", str(directory)])
    assert result.exit_code == 1 and result.stderr == ""  # the table on stdout, nothing drawn on stderr
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert pictures.progress_wanted(json_out=True) and pictures.progress_wanted(json_out=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    assert pictures.progress_wanted(json_out=False) and not pictures.progress_wanted(json_out=True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not pictures.progress_wanted(json_out=False)


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT are POSIX")
def test_ctrl_c_stops_the_workers_cleanly(tmp_path, clean_digits):
    data = np.asarray(digit_photo(clean_digits[3], height=120, shape=(900, 900)))
    Image.fromarray(data).save(tmp_path / "0000.png")
    # Answers for 1,200 files (~200 KB of JSON lines) overfill the 64 KB pipe the test reads only once: the
    # command blocks on it, so it cannot finish before the signal however slowly this test gets scheduled.
    for k in range(1, 1200):
        os.link(tmp_path / "0000.png", tmp_path / f"{k:04d}.png")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "digitnet", "predict", "--json", "--workers", "2",
                                str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, start_new_session=True,  # its own process group, as at a terminal
                               # where Ctrl-C is not ignored (a test run in the background inherits it ignored)
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = process.stdout.readline()  # the workers are running
        assert json.loads(first)["digit"] == 3
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group gets it
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode != 0
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # nothing of the group is left: no orphan workers
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("worker processes outlived the command")


def test_ctrl_c_swallowed_on_its_way_still_stops_the_folder():
    # A KeyboardInterrupt that lands where it is only printed (a finalizer, a callback) must not let the command
    # read the folder to its end with exit status 0: the next picture raises it again.
    def answers():
        yield 1
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs here, and its exception is swallowed
        except KeyboardInterrupt:
            pass
        yield 2
        yield 3

    got = []
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal (CI may run with it ignored)
    try:
        with pytest.raises(KeyboardInterrupt):
            for answer in pictures._with_progress(answers(), 3, json_out=True):
                got.append(answer)
        assert got == [1]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the usual handler is back
    finally:
        signal.signal(signal.SIGINT, before)


def test_ctrl_c_while_talking_to_the_workers_is_raised_on_leaving():
    # A KeyboardInterrupt raised inside the executor's calls can leave one of its locks held for good (the shutdown
    # then hangs): there the signal waits, and is raised, by the handler that was there, once the call is done.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    finished = False
    try:
        with pytest.raises(KeyboardInterrupt):
            with batch._ctrl_c_held() as arrived:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.2)  # a handler that raises would raise here
                finished = bool(arrived)
        assert finished
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("kind", ["ignored", "own handler"])
def test_ctrl_c_held_is_handed_on_as_it_was_to_be_handled(kind):
    # Ignored, it stays ignored; a handler of the caller's own (one that only takes note) gets it once, on leaving.
    calls = []
    handler = signal.SIG_IGN if kind == "ignored" else (lambda signum, frame: calls.append(signum))
    before = signal.signal(signal.SIGINT, handler)
    try:
        with batch._ctrl_c_held() as arrived:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            assert calls == []  # not yet
        assert calls == ([] if kind == "ignored" else [signal.SIGINT])
        assert arrived == ([] if kind == "ignored" else [signal.SIGINT])
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, before)


def test_ctrl_c_still_stops_a_wait_for_the_workers():
    import threading

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    sent = []

    def ctrl_c() -> None:
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    try:
        with batch.WorkerPool(2) as pool:
            timer = threading.Timer(1.0, ctrl_c)  # while item 0 (four seconds) is awaited
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                list(batch.ordered_batches(slow_zero, range(4), workers=2, chunk=1, pool=pool))
            stopped = time.monotonic()
            timer.join()
        assert sent and stopped - sent[0] < 2.0  # not when the four seconds are over
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_folders_subfolders_are_named_as_not_read_with_the_pattern_that_reads_them(tmp_path, clean_digits):
    (tmp_path / "sub").mkdir()
    Image.fromarray(digit_photo(clean_digits[3])).convert("RGB").save(tmp_path / "top.jpg")
    Image.fromarray(digit_photo(clean_digits[7])).convert("RGB").save(tmp_path / "sub" / "inner.jpg")
    result = runner.invoke(app, ["predict", "--json", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["digit"] for line in result.stdout.splitlines()] == [3]
    pattern = os.path.join(str(tmp_path), "**", "*.jpg")
    assert result.stderr.strip() == f"note: {tmp_path}: 1 subfolder not read (a pattern such as '{pattern}' reads " \
        "the pictures in them too)"
    result = runner.invoke(app, ["predict", "--json", pattern])  # ... and it does
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(line)["digit"] for line in result.stdout.splitlines()) == [3, 7]
