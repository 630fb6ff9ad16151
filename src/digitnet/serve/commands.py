"""CLI commands of this concern, added to the main app by ``register(app)``."""

import typer


def register(app: typer.Typer) -> None:
    """Add this concern's commands to ``app``."""
