"""How the command line shows an error on stderr: one line per message wherever stderr is not a terminal.

Rich wraps what it prints at the terminal's width, or at 80 columns when stderr is a pipe or a file, which cuts
an error in two for a script that greps it. Our own ``error:`` line is printed unwrapped (:func:`print_error`);
Typer's usage errors (a bad option value, a missing argument) are drawn in a Rich box in a terminal, and shown
the plain Click way off one (:class:`DigitnetGroup`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

try:  # Typer from 0.2x carries its own copy of Click, whose exceptions its commands raise
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older Typer runs on Click itself
    from click.exceptions import ClickException


def print_error(message: str) -> None:
    """``error: message`` on stderr, on one line however long (escaped: `digitnet[serve]` is text)."""
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal (no stderr, or one without a file, is not)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class DigitnetGroup(TyperGroup):
    """Typer's group, whose usage errors are Click's plain lines (``Error: ...`` on one line) when stderr is not
    a terminal; in a terminal, Typer's Rich box as before."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """Run the command line; off a terminal, do the error handling of Click's standalone mode here."""
        if not standalone_mode or stderr_is_terminal():
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            status = super().main(args, prog_name, complete_var, False, **extra)
        except ClickException as exc:
            # A bare `digitnet` raises the help as an error; Rich has printed it already and left the message empty.
            if type(exc).__name__ != "NoArgsIsHelpError" or exc.format_message():
                exc.show()
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        # Without standalone mode Click returns typer.Exit's code (Ctrl-C's 130 too); our commands return None.
        sys.exit(status if isinstance(status, int) else 0)
