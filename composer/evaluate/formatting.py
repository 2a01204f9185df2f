"""How the report shows a figure: a number in text, a Markdown table, a JSON value."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["fmt", "table", "jsonable"]


def fmt(x, digits=3, pct=False) -> str:
    """``x`` with ``digits`` decimals, or as a whole percentage (``pct``); "n/a" for None, NaN and inf."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if pct:
        return f"{x:.0%}"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def jsonable(obj):
    """NaN/inf -> None, NumPy scalars/arrays -> Python: ``json.dumps(..., allow_nan=False)`` safe."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return obj
