"""The ``digitnet`` command line: the top layer, thin wiring from options to the public API.

One module per concern, each with ``register(app)`` adding its commands; every command turns its options into
one call of a public function of that concern and prints the answer (a table, or one JSON object with ``--json``):
``cli/train.py`` (train), ``cli/evaluate.py`` (evaluate, ensemble, report, compare, explain), ``cli/models.py``
(models, summary), ``cli/pictures.py`` (predict, read), ``cli/serve.py`` (serve, export), ``cli/bench.py`` (bench).
This package only collects them and turns expected errors into one line.
"""

from __future__ import annotations

import sys

import typer

from digitnet.cli import bench as bench_commands
from digitnet.cli import evaluate as evaluate_commands
from digitnet.cli import models as models_commands
from digitnet.cli import pictures as picture_commands
from digitnet.cli import serve as serve_commands
from digitnet.cli import train as train_commands
from digitnet.cli.errors import DigitnetGroup, print_error
from digitnet.train.run_folder import WRITE_CAUSES, write_error
from digitnet.utils import DigitnetError

# In `digitnet --help` order.
COMMAND_MODULES = (train_commands, evaluate_commands, models_commands, picture_commands, serve_commands,
                   bench_commands)

app = typer.Typer(
    name="digitnet",
    help="Train, evaluate, explain and serve handwritten-digit recognizers on MNIST.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=DigitnetGroup,  # usage errors on one line each where stderr is not a terminal
)
for _module in COMMAND_MODULES:
    _module.register(app)


def main() -> None:
    """Entry point: run the app, turning expected errors into one clean line (see :mod:`digitnet.cli.errors`)."""
    try:
        app()
    except DigitnetError as exc:
        _error_line(str(exc))
    except OSError as exc:
        # The last resort for a file the command could not write (full disk, read-only or forbidden folder) or
        # open: one line naming it. The commands' own checks name the option; this names at least the file.
        if exc.filename is None:
            raise
        if exc.errno in WRITE_CAUSES:
            _error_line(str(write_error(exc, exc.filename)))
        _error_line(f"{exc.filename}: {exc.strerror or exc}")


def _error_line(message: str) -> None:
    print_error(message)
    sys.exit(1)


if __name__ == "__main__":
    main()
