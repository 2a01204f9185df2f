"""Jobs and results as JSON, to cross a process boundary (a queue to composing workers) intact.

A ``Job``'s request travels as ``GenerationRequest.params()`` plus its primer; pieces travel as
their token grid (base64) and metadata, so nothing is lost the way a MIDI round trip could lose
it. Files never travel here: a worker stores them (the database) and the result names them.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import numpy as np

from composer.music.grid import Piece
from composer.generate.request import GenerationRequest
from service.jobs import Job, Result

WIRE_VERSION = 1  # bump when a field changes meaning; a worker refuses jobs of another version


class WireError(ValueError):
    """A message from another version of Mozart, or not from Mozart at all."""


def piece_to_wire(piece: Piece) -> dict[str, Any]:
    data = {f.name: getattr(piece, f.name) for f in dataclasses.fields(piece) if f.name != "grid"}
    data["time_signature"] = list(piece.time_signature)
    data["grid"] = base64.b64encode(piece.grid.tobytes()).decode("ascii")
    data["frames"] = piece.n_frames
    return data


def piece_from_wire(data: dict[str, Any]) -> Piece:
    data = dict(data)
    grid = np.frombuffer(base64.b64decode(data.pop("grid")), dtype=np.uint8).reshape(int(data.pop("frames")), -1)
    return Piece(grid=grid.copy(), **{**data, "time_signature": tuple(data["time_signature"])})


def job_to_wire(job: Job) -> dict[str, Any]:
    request = job.request
    return {
        "wire": WIRE_VERSION,
        "request": None if request is None else request.params(),
        "primer": None if request is None or request.primer is None else piece_to_wire(request.primer),
        "piece": None if job.piece is None else piece_to_wire(job.piece),
        "sound": job.sound, "formats": list(job.formats), "version": job.version,
    }


def job_from_wire(data: dict[str, Any]) -> Job:
    _check(data)
    primer = piece_from_wire(data["primer"]) if data.get("primer") else None
    request = GenerationRequest.from_params(data["request"], primer) if data.get("request") is not None else None
    piece = piece_from_wire(data["piece"]) if data.get("piece") else None
    return Job(request=request, piece=piece, sound=data["sound"], formats=tuple(data["formats"]),
               version=data.get("version"))


def result_to_wire(result: Result) -> dict[str, Any]:
    """Everything but the files' bytes (their formats are listed)."""
    return {
        "wire": WIRE_VERSION, "piece": piece_to_wire(result.piece), "formats": list(result.files),
        "originality_bars": result.originality_bars, "originality_source": result.originality_source,
        "sound": result.sound, "warnings": list(result.warnings), "seconds": dict(result.seconds),
    }


def result_from_wire(data: dict[str, Any], files: dict[str, bytes]) -> Result:
    _check(data)
    missing = [f for f in data["formats"] if f not in files]
    if missing:
        raise WireError(f"the result's files are missing: {', '.join(missing)}")
    return Result(piece=piece_from_wire(data["piece"]), files={f: files[f] for f in data["formats"]},
                  originality_bars=data["originality_bars"], originality_source=data["originality_source"],
                  sound=data["sound"], warnings=list(data["warnings"]), seconds=dict(data["seconds"]))


def _check(data: dict[str, Any]) -> None:
    if not isinstance(data, dict) or data.get("wire") != WIRE_VERSION:
        raise WireError(f"expected a Mozart message of wire version {WIRE_VERSION}, got "
                        f"{data.get('wire') if isinstance(data, dict) else type(data).__name__}")
