"""CLI commands for the model zoo, added to the main app by ``register(app)``: ``models`` and ``summary``."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer) -> None:
    """Add this concern's commands to ``app``."""
    app.command("models")(models_command)
    app.command()(summary)


def models_command(json_out: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
    """List the architectures in the model zoo."""
    from digitnet.models.summary import describe_models

    rows = describe_models()
    if json_out:
        print(json.dumps(rows))
        return
    table = Table("name", "params", "input", "normalization", "description", title="digitnet model zoo")
    for r in rows:
        size = f"{r['input_size']}×W line" if r["task"] == "lines" else f"{r['input_size']}×{r['input_size']}"
        params = "members'" if r["parameters"] is None else f"{r['parameters']:,}"
        table.add_row(r["name"], params, size, r["normalization"], r["description"])
    Console(soft_wrap=True).print(table)


def summary(
    arch: str = typer.Argument(..., help="Architecture name (see `digitnet models`)."),
    json_out: bool = typer.Option(False, "--json", help="Print the layers as JSON."),
) -> None:
    """Keras-style summary of an architecture: its input, each layer, its output shape and parameters (a line
    recognizer's sizes that follow the line's width W are given in terms of W)."""
    from digitnet.models.summary import summarize

    info = summarize(arch)
    if json_out:
        print(json.dumps(info))
        return
    console = Console(soft_wrap=True)
    table = Table("layer (type)", "output shape", "params", title=f"Model: {arch}")
    for layer in info["layers"]:
        table.add_row(layer["name"], _shape(layer["output_shape"]), f"{layer['params']:,}")
    console.print(table)
    norm = info["input_contract"]["normalization"]
    console.print(f"Input: {_shape(info['input_shape'])} {'line' if info['task'] == 'lines' else 'image'}, pixels "
                  f"0..1 fed as (x - {norm['mean']:g}) / {norm['std']:g} ({norm['name']} normalization)",
                  highlight=False)
    console.print(f"Total params: {info['total_params']:,}\nTrainable params: {info['trainable_params']:,}\n"
                  f"Non-trainable params: {info['total_params'] - info['trainable_params']:,}")


def _shape(dims: list) -> str:
    """``(None, 64, 2, W/4)``: a shape as Keras prints it, a size in terms of the line width W unquoted."""
    return f"({', '.join(str(d) for d in dims)})"
