"""Writing and reading the training checks' artifacts: JSON results, PNG/SVG plots, checkpoints.

Every file is written atomically (:func:`equivalence.report.write.atomic_write`: a temporary file in the
target folder, then ``os.replace``), so an interrupted run never leaves a half-written file. Checkpoints are
``torch.save`` of plain state dicts (tensors, numbers, strings, lists and dicts only) and are loaded with
``torch.load(..., weights_only=True)``: loading one never executes code from the file.
"""

import io
import json
import math
from pathlib import Path

import torch

from ..report.write import atomic_write

__all__ = [
    "SVG_HASHSALT",
    "jsonable",
    "load_checkpoint",
    "render_figure",
    "save_checkpoint",
    "tight_bbox",
    "write_figure",
    "write_json",
]


def jsonable(obj):
    """``obj`` with tensors turned into lists and non-finite floats into the strings ``"inf"``/``"nan"``."""
    if isinstance(obj, torch.Tensor):
        return jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return obj
    raise TypeError(
        f"cannot write {type(obj).__name__} to JSON (expected numbers, strings, lists, dicts, tensors)"
    )


def write_json(path: Path, data: dict) -> Path:
    """Write ``data`` as indented, key-sorted JSON (non-finite floats as strings), atomically."""
    path = Path(path)
    atomic_write(path, json.dumps(jsonable(data), indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


#: SVG element ids are hashes salted with this (matplotlib's default salt is random: new bytes every run)
SVG_HASHSALT = "attention-rnn-equivalence"


def tight_bbox(fig):
    """The figure's tight bounding box (inches, padded like ``bbox_inches="tight"``), computed once so that
    the PNG and the SVG of one figure share it (``savefig(bbox_inches="tight")`` lays the figure out again
    per format: measured 12-18% of the rendering time of the training figures)."""
    fig.draw_without_rendering()
    return fig.get_tightbbox(fig.canvas.get_renderer()).padded(0.1)


def render_figure(fig, fmt: str, bbox=None) -> bytes:
    """The bytes of ``fig`` as ``"png"`` or ``"svg"``, byte-stable: no software or date metadata and a fixed
    SVG hash salt, so the same figure gives the same bytes on every run (and reports stay byte-identical
    under ``SOURCE_DATE_EPOCH``). ``bbox``: a box from :func:`tight_bbox` (default: computed here)."""
    import matplotlib  # lazy: matplotlib loads only when a figure is written

    if fmt not in ("png", "svg"):
        raise ValueError(f"figure format must be 'png' or 'svg'; got {fmt!r}")
    meta = {"Software": None} if fmt == "png" else {"Date": None}
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "path"}):
        fig.savefig(
            buf, format=fmt, dpi=110, bbox_inches=bbox if bbox is not None else "tight", metadata=meta
        )
    return buf.getvalue()


def write_figure(path: Path, fig, formats: tuple[str, ...] = ("png", "svg")) -> Path:
    """Render a matplotlib figure (Agg) to ``path`` (a ``.png`` name) and, by default, the same stem ``.svg``,
    each byte-stable (:func:`render_figure`) and written atomically; close the figure; return the PNG path."""
    import matplotlib.pyplot as plt  # lazy: matplotlib loads only when a figure is written

    path = Path(path)
    if path.suffix != ".png":
        raise ValueError(f"figure path must end in .png (the SVG gets the same stem); got {path}")
    try:
        bbox = tight_bbox(fig)
        blobs = {fmt: render_figure(fig, fmt, bbox) for fmt in formats}
    finally:
        plt.close(fig)
    for fmt, data in blobs.items():
        atomic_write(path.with_suffix("." + fmt), data)
    return path


def save_checkpoint(path: Path, state: dict) -> Path:
    """``torch.save`` a dict of state dicts (tensors moved to CPU) atomically."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save(_to_cpu(state), buf)
    atomic_write(path, buf.getvalue())
    return path


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True`` (no code execution)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_cpu(v) for v in obj]
    return obj
