"""Limits and tuning of one server process, and how ``digitnet serve`` hands them to its workers."""

from __future__ import annotations

import os
from dataclasses import dataclass

from digitnet.vision.io import MAX_PIXELS


@dataclass
class ServeSettings:
    """Limits and tuning of one server process."""

    max_upload_bytes: int = 8 * 1024 * 1024  # request body; 413 above
    max_pixels: int = MAX_PIXELS  # decoded width × height of one picture (40 MP: a phone photo); 413 above
    max_images: int = 64  # images in one batch request; 413 above
    batch: bool = True  # micro-batch concurrent pixel requests
    max_batch: int = 128  # images in one forward pass
    threads: int | None = 1  # torch threads; 1 measured fastest for small batches on a shared CPU
    image_workers: int = 2  # photos decoded and read at once (each may be large)

    @classmethod
    def from_env(cls) -> ServeSettings:
        """Settings passed by ``digitnet serve`` to its worker processes."""
        env = os.environ
        return cls(
            max_upload_bytes=int(env.get("DIGITNET_SERVE_MAX_UPLOAD") or cls.max_upload_bytes),
            max_pixels=int(env.get("DIGITNET_SERVE_MAX_PIXELS") or cls.max_pixels),
            batch=env.get("DIGITNET_SERVE_BATCH", "1") != "0",
            threads=int(env.get("DIGITNET_SERVE_THREADS") or 1),
        )
