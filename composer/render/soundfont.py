"""General MIDI rendering through ``midirenderer`` (a Rust SoundFont synthesiser).

The SoundFont is ``$MOZART_SOUNDFONT`` when set, else the small ``TimGM6mb.sf2`` that
ships inside the ``pretty_midi`` wheel. Its bytes are read once per path and kept.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import wave
from pathlib import Path

import numpy as np

from composer.errors import RenderError

log = logging.getLogger(__name__)

SOUNDFONT_ENV = "MOZART_SOUNDFONT"


class SoundFontError(RenderError):
    """No usable SoundFont: missing, unreadable or not a SoundFont."""


def bundled_soundfont() -> Path | None:
    """``TimGM6mb.sf2`` inside the installed ``pretty_midi`` package, if there is one."""
    try:
        import pretty_midi  # noqa: PLC0415 - heavy-ish, only needed here
    except ImportError:
        return None
    path = Path(pretty_midi.__file__).with_name("TimGM6mb.sf2")
    return path if path.is_file() else None


def soundfont_path() -> Path:
    """The SoundFont to use, or ``SoundFontError`` saying how to get one."""
    env = os.environ.get(SOUNDFONT_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise SoundFontError(f"SoundFont {path} (from ${SOUNDFONT_ENV}) does not exist.")
        return path
    path = bundled_soundfont()
    if path is None:
        raise SoundFontError(
            "No SoundFont found. Install pretty_midi (`pip install pretty_midi`, it ships TimGM6mb.sf2) "
            f"or set ${SOUNDFONT_ENV} to a General MIDI .sf2 file."
        )
    return path


_cache: dict[tuple[str, int, int], bytes] = {}
_cache_lock = threading.Lock()


def load_soundfont(path: Path) -> bytes:
    """The SoundFont's bytes (cached by path, size and mtime), checked to be a RIFF sfbk file."""
    try:
        st = path.stat()
    except OSError as e:
        raise SoundFontError(f"Cannot read SoundFont {path}: {e.strerror}.") from None
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _cache_lock:
        data = _cache.get(key)
    if data is None:
        data = path.read_bytes()
        if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"sfbk":
            raise SoundFontError(f"{path} is not a SoundFont 2 file (.sf2).")
        with _cache_lock:
            _cache.clear()  # keep one SoundFont in memory, not every version of it
            _cache[key] = data
    return data


def render_midi(midi: bytes, soundfont: bytes) -> tuple[np.ndarray, int]:
    """(samples, channels) float32 in -1..1 and the sample rate, from MIDI bytes."""
    try:
        import midirenderer  # noqa: PLC0415 - optional native extension
    except ImportError:
        raise SoundFontError("The SoundFont renderer is not installed (`pip install midirenderer`).") from None
    try:
        wav = midirenderer.render_wave_from(soundfont, midi)
    except (RuntimeError, ValueError) as e:
        message = str(e)
        if "SoundFont" in message:
            raise SoundFontError(f"The SoundFont could not be loaded ({message}).") from None
        raise RenderError(f"The MIDI could not be rendered ({message}).") from None
    return decode_wav(wav)


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        raw = w.readframes(frames)
    if width != 2:
        raise RenderError(f"Unexpected {8 * width}-bit WAV from the SoundFont renderer.")
    samples = np.frombuffer(raw, "<i2").reshape(-1, channels).astype(np.float32) / 32768.0
    return samples, rate
