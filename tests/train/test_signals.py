"""SIGTERM and Ctrl-C ask the loop to stop between steps; a second signal stops at once."""

from __future__ import annotations

import os
import signal

import pytest

from digitnet.train.signals import StopRequest


def test_the_first_signal_sets_a_flag_and_the_second_interrupts():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        assert not stop.requested and stop.exit_code == 0
        os.kill(os.getpid(), signal.SIGTERM)  # would end the process with Python's default handling
        assert stop.requested and stop.signal_name == "SIGTERM" and stop.exit_code == 143
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before  # handlers are restored


def test_ctrl_c_is_a_request_too():
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signal_name == "SIGINT" and stop.exit_code == 130
