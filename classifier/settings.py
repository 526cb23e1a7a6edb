"""Where things live: the project root and the shared data/weights folder beside it."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """`$NOTHOTDOG_SHARED`, or `../shared` beside the project (where CI puts it)."""
    return Path(os.environ.get("NOTHOTDOG_SHARED", PROJECT_ROOT.parent / "shared"))


def default_base_weights() -> Path:
    return (shared_dir() / "weights" / "mobilenet_v2" /
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")
