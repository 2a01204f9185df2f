"""libxmp through ctypes: the one module player that reads every tracker format we meet.

libxmp (Debian's ``libxmp4``) loads 90-odd module formats (MOD, XM, S3M, IT, STM...) and
plays them tick by tick, honouring jumps, pattern loops and breaks, speed and tempo
changes, note delays and sample transposition, which a reader of the pattern data alone
would have to re-implement per format. ``nodmod`` (pure Python, PyPI) was the other
candidate: it reads MOD, XM and S3M only, so the Impulse Tracker files of pingus, biniax2,
gltron, cuyo and madbomber (about a fifth of the material) would be lost.

No root is needed: where the system has no libxmp, ``find_library`` takes it from the
``libxmp4`` ``.deb`` (fetched with ``apt-get download`` like the game packages, or found
in a ``--from`` folder) unpacked into ``data/cache/libxmp/``. Only the structures this
project reads are declared, exactly as ``xmp.h`` of libxmp 4.x lays them out.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

from composer.errors import MozartError

MAX_CHANNELS = 64  # XMP_MAX_CHANNELS
KEY_OFF, KEY_CUT, KEY_FADE = 0x81, 0x82, 0x83  # event.note values that stop a note
PERIOD_BASE = 13696.0  # libxmp's period of note 0; note n plays at PERIOD_BASE / 2**(n/12)
SAMPLE_16BIT, SAMPLE_LOOP = 1 << 0, 1 << 1
FORMAT_MONO = 1 << 2
DEB_PACKAGE = "libxmp4"
SONAME = "libxmp.so.4"


class LibxmpMissing(MozartError):
    """libxmp is neither installed nor unpacked from its ``.deb``; the message says how to get it."""


class Event(ctypes.Structure):
    _fields_ = [(name, ctypes.c_ubyte) for name in ("note", "ins", "vol", "fxt", "fxp", "f2t", "f2p", "flag")]


class ChannelInfo(ctypes.Structure):
    _fields_ = [
        ("period", ctypes.c_uint),  # the played period x 4096 (slides, vibrato and arpeggio included)
        ("position", ctypes.c_uint),
        ("pitchbend", ctypes.c_short),
        ("note", ctypes.c_ubyte),
        ("instrument", ctypes.c_ubyte),
        ("sample", ctypes.c_ubyte),
        ("volume", ctypes.c_ubyte),  # the final volume, envelopes and fades included
        ("pan", ctypes.c_ubyte),
        ("reserved", ctypes.c_ubyte),
        ("event", Event),  # the current row's event on this channel
    ]


class FrameInfo(ctypes.Structure):
    _fields_ = (
        [(name, ctypes.c_int) for name in (
            "pos", "pattern", "row", "num_rows", "frame", "speed", "bpm", "time", "total_time", "frame_time")]
        + [("buffer", ctypes.c_void_p)]
        + [(name, ctypes.c_int) for name in (
            "buffer_size", "total_size", "volume", "loop_count", "virt_channels", "virt_used", "sequence")]
        + [("channel_info", ChannelInfo * MAX_CHANNELS)]
    )


class Sample(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char * 32),
        ("len", ctypes.c_int),
        ("lps", ctypes.c_int),
        ("lpe", ctypes.c_int),
        ("flg", ctypes.c_int),
        ("data", ctypes.POINTER(ctypes.c_ubyte)),
    ]


class Envelope(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in ("flg", "npt", "scl", "sus", "sue", "lps", "lpe")] + [
        ("data", ctypes.c_short * 64)
    ]


class KeyMap(ctypes.Structure):
    _fields_ = [("ins", ctypes.c_ubyte), ("xpo", ctypes.c_byte)]


class SubInstrument(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in (
        "vol", "gvl", "pan", "xpo", "fin", "vwf", "vde", "vra", "vsw", "rvv", "sid", "nna", "dct", "dca", "ifc", "ifr")]


class Instrument(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char * 32),
        ("vol", ctypes.c_int),
        ("nsm", ctypes.c_int),
        ("rls", ctypes.c_int),
        ("aei", Envelope),
        ("pei", Envelope),
        ("fei", Envelope),
        ("map", KeyMap * 121),
        ("sub", ctypes.POINTER(SubInstrument)),
        ("extra", ctypes.c_void_p),
    ]


class Module(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char * 64),
        ("type", ctypes.c_char * 64),
    ] + [(name, ctypes.c_int) for name in ("pat", "trk", "chn", "ins", "smp", "spd", "bpm", "len", "rst", "gvl")] + [
        ("xxp", ctypes.c_void_p),
        ("xxt", ctypes.c_void_p),
        ("xxi", ctypes.POINTER(Instrument)),
        ("xxs", ctypes.POINTER(Sample)),
        ("xxc", ctypes.c_int * (3 * MAX_CHANNELS)),
        ("xxo", ctypes.c_ubyte * 256),
    ]


class Sequence(ctypes.Structure):
    _fields_ = [("entry_point", ctypes.c_int), ("duration", ctypes.c_int)]


class ModuleInfo(ctypes.Structure):
    _fields_ = [
        ("md5", ctypes.c_ubyte * 16),
        ("vol_base", ctypes.c_int),
        ("mod", ctypes.POINTER(Module)),
        ("comment", ctypes.c_char_p),
        ("num_sequences", ctypes.c_int),
        ("seq_data", ctypes.POINTER(Sequence)),
    ]


_LIB: ctypes.CDLL | None = None


def cache_dir(data_dir: Path) -> Path:
    """Where the ``libxmp4`` package is unpacked when the system has no libxmp."""
    return Path(data_dir) / "cache" / "libxmp"


def unpacked_library(root: Path) -> Path | None:
    """The ``libxmp.so.4`` inside a tree the ``.deb`` was unpacked into, if any."""
    found = sorted(Path(root).glob(f"usr/lib/*/{SONAME}")) + sorted(Path(root).glob(f"usr/lib/{SONAME}"))
    return found[0] if found else None


def load(path: Path | None = None) -> ctypes.CDLL:
    """The library: ``path``, else the one loaded before, else the system's."""
    global _LIB
    if path is None and _LIB is not None:
        return _LIB
    name = str(path) if path else ctypes.util.find_library("xmp")
    if not name:
        raise LibxmpMissing(
            "libxmp is not installed. `corpus build` fetches Debian's libxmp4 package itself where "
            "apt-get works; otherwise install it (apt-get install libxmp4) or put its .deb in the "
            "--from folder."
        )
    try:
        lib = ctypes.CDLL(name)
    except OSError as e:
        raise LibxmpMissing(f"libxmp could not be loaded from {name}: {e}") from None
    lib.xmp_create_context.restype = ctypes.c_void_p
    lib.xmp_create_context.argtypes = []
    for fn in ("xmp_free_context", "xmp_release_module", "xmp_end_player"):
        getattr(lib, fn).argtypes = [ctypes.c_void_p]
        getattr(lib, fn).restype = None
    lib.xmp_load_module_from_memory.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
    lib.xmp_start_player.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.xmp_play_frame.argtypes = [ctypes.c_void_p]
    lib.xmp_get_frame_info.argtypes = [ctypes.c_void_p, ctypes.POINTER(FrameInfo)]
    lib.xmp_get_frame_info.restype = None
    lib.xmp_get_module_info.argtypes = [ctypes.c_void_p, ctypes.POINTER(ModuleInfo)]
    lib.xmp_get_module_info.restype = None
    lib.xmp_set_position.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.xmp_set_player.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    _LIB = lib
    return lib


def available() -> bool:
    try:
        load()
    except LibxmpMissing:
        return False
    return True
