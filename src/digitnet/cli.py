"""The ``digitnet`` command line: it only collects the commands and turns expected errors into one line.

Every concern owns its commands in its ``commands.py``, whose ``register(app)`` adds them; each command wires its
options to one public function of that concern. The concerns and their commands:
train (train), evaluate (evaluate, ensemble, report, compare, explain), models (models, summary),
recognizer (predict, read: ``recognizer_commands``), serve (serve, export), bench (bench).
"""

from __future__ import annotations

import errno
import sys

import typer
from rich.console import Console
from rich.markup import escape

from digitnet import recognizer_commands
from digitnet.bench import commands as bench_commands
from digitnet.evaluate import commands as evaluate_commands
from digitnet.models import commands as models_commands
from digitnet.serve import commands as serve_commands
from digitnet.train import commands as train_commands
from digitnet.train.run_folder import write_error
from digitnet.utils import DigitnetError

# In `digitnet --help` order.
COMMAND_MODULES = (train_commands, evaluate_commands, models_commands, recognizer_commands, serve_commands,
                   bench_commands)

app = typer.Typer(
    name="digitnet",
    help="Train, evaluate, explain and serve handwritten-digit recognizers on MNIST.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for _module in COMMAND_MODULES:
    _module.register(app)


def main() -> None:
    """Entry point: run the app, turning expected errors into one clean line (escaped: `digitnet[serve]` is text)."""
    try:
        app()
    except DigitnetError as exc:
        _error_line(str(exc))
    except OSError as exc:
        # The last resort for a file the command could not write (full disk, read-only or forbidden folder) or
        # open: one line naming it. The commands' own checks name the option; this names at least the file.
        if exc.filename is None:
            raise
        if exc.errno in WRITE_ERRNOS:
            _error_line(str(write_error(exc, exc.filename)))
        _error_line(f"{exc.filename}: {exc.strerror or exc}")


WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def _error_line(message: str) -> None:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    sys.exit(1)


if __name__ == "__main__":
    main()
