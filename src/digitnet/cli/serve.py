"""CLI commands for serving, added to the main app by ``register(app)``: ``serve`` and ``export``."""

from __future__ import annotations

from pathlib import Path

import typer

from digitnet.assets import MODEL_HELP
from digitnet.vision.io import MAX_PIXELS  # numpy and Pillow only: the CLI imports them anyway

# On SIGTERM, uvicorn stops accepting connections, answers the requests in flight, and cancels those still
# running after this many seconds. A photo is read in well under a second; this leaves room for a busy machine
# and stays under the 30 s after which container runtimes send SIGKILL.
GRACEFUL_TIMEOUT_S = 10


def register(app: typer.Typer) -> None:
    """Add this concern's commands to ``app``."""
    app.command("serve")(serve)
    app.command("export")(export)


def serve(
    model: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 to accept other machines)."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port, 1 to 65535."),
    workers: int = typer.Option(1, help="Server processes, each with its own copy of the model."),
    threads: int = typer.Option(1, help="PyTorch threads per worker (1 measured fastest for small batches)."),
    max_upload_mb: float = typer.Option(8.0, "--max-upload-mb",
                                        help="Largest request body accepted, in MB, more than 0 (413 above)."),
    max_pixels: int = typer.Option(MAX_PIXELS, "--max-pixels", min=1,
                                   help="Largest picture, width × height (413 above): checked from its header."),
    batch: bool = typer.Option(True, "--batch/--no-batch", help="Micro-batch concurrent single-image requests."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request (costs throughput)."),
) -> None:
    """Serve the drawing page, the JSON API (/api/predict, /api/read) and its docs (/docs).

    SIGTERM stops it gracefully: no new connections, the requests in flight answered, exit status 0.
    """
    import math
    import os
    import signal

    from digitnet.saved_model import load_model

    if workers < 1 or threads < 1:
        raise typer.BadParameter("--workers and --threads must be at least 1")
    if not 0 < max_upload_mb < math.inf or int(max_upload_mb * 1024 * 1024) < 1:  # NaN too
        raise typer.BadParameter(f"{max_upload_mb} is not a size in MB above 0", param_hint="--max-upload-mb")
    from digitnet.utils import require_extra

    # Imported here, not at module import: `digitnet` works without the serve extra. The app module is imported
    # now too, so a missing package of the extra is named in one line before uvicorn starts.
    for module in ("fastapi", "fastapi_offline"):
        require_extra(module, "serve", "digitnet serve")
    uvicorn = require_extra("uvicorn", "serve", "digitnet serve")
    import digitnet.serve.app  # noqa: F401  (now, so a broken install fails before uvicorn starts)

    if model is not None:
        load_model(model)  # fail now with one clean line, not once per worker
    # Workers are separate processes that import the app by name, so settings travel in the environment.
    os.environ.update({
        "DIGITNET_SERVE_MODEL": str(model.resolve()) if model else "",
        "DIGITNET_SERVE_THREADS": str(threads),
        "DIGITNET_SERVE_MAX_UPLOAD": str(int(max_upload_mb * 1024 * 1024)),
        "DIGITNET_SERVE_MAX_PIXELS": str(max_pixels),
        "DIGITNET_SERVE_BATCH": "1" if batch else "0",
    })
    typer.echo(f"digitnet: serving on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)", err=True)
    # uvicorn handles SIGTERM while it serves and, once shut down, raises it again for the handler it found:
    # this one, so a graceful stop exits with status 0 rather than as killed by the signal.
    signal.signal(signal.SIGTERM, _exit_after_graceful_shutdown)
    uvicorn.run("digitnet.serve.app:create_app_from_env", factory=True, host=host, port=port, workers=workers,
                access_log=access_log, log_level="info" if access_log else "warning",
                timeout_graceful_shutdown=GRACEFUL_TIMEOUT_S)


def _exit_after_graceful_shutdown(signum: int, frame: object) -> None:
    raise SystemExit(0)


def export(
    model: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    fmt: str = typer.Option("onnx", "--format", "-f", help="onnx or torchscript."),
    out: Path = typer.Option(..., "--out", "-o", help="File to write, e.g. digits.onnx."),
    input_type: str = typer.Option("uint8", "--input-type",
                                   help="Input the exported model takes: uint8 (0..255) or float (0..1)."),
    opset: int = typer.Option(17, help="ONNX opset version: one the installed torch exports (7 to 20 for torch "
                              "2.13; another is refused, naming the range)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the file already at --out (else refused; a "
                                   "model's own files never are)."),
) -> None:
    """Export a model, preprocessing included, to ONNX (with a dynamic batch axis) or TorchScript."""
    from digitnet.saved_model import load_model
    from digitnet.serve.export import check_export_request, export_loaded, signature

    check_export_request(fmt, out, opset, overwrite)  # before the model is loaded: a wrong request is answered at once
    loaded = load_model(model)
    path = export_loaded(loaded, out, fmt=fmt, input_type=input_type, opset=opset, overwrite=overwrite)
    typer.echo(f"wrote {path} ({path.stat().st_size:,} bytes): {signature(loaded, input_type)}")
