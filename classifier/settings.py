"""Where things live: the project root and the shared data/weights folder beside it."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Largest file accepted, in bytes: the web app's upload limit (bigger requests get 413)
#: and the batch command's per-file limit (bigger files get `file_too_large`, read no
#: further). 20 MB fits any phone photo.
MAX_UPLOAD_BYTES = int(os.environ.get("NOTHOTDOG_MAX_UPLOAD_BYTES") or 20 * 1024 * 1024)


def shared_dir() -> Path:
    """`$NOTHOTDOG_SHARED`, or `../shared` beside the project (where CI puts it)."""
    return Path(os.environ.get("NOTHOTDOG_SHARED", PROJECT_ROOT.parent / "shared"))


def default_base_weights() -> Path:
    return (shared_dir() / "weights" / "mobilenet_v2" /
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")


def machine_description() -> str:
    """The CPU this runs on, as model cards and benchmarks state it: speed figures only
    mean something next to it (int8 is fast with AVX-512 VNNI and slow without)."""
    import platform

    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        cpuinfo = ""
    name = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                 if line.startswith("model name")), platform.processor() or platform.machine())
    flags = ("AVX-512 VNNI" if "avx512_vnni" in cpuinfo
             else "AVX2, no AVX-512 VNNI" if " avx2" in cpuinfo else "no AVX2")
    return f"{os.cpu_count()}-core {name} ({flags})"
