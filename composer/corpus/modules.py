"""A tracker module (MOD, XM, S3M, IT...) played once by libxmp and written down as notes.

The player is driven tick by tick and every tick's state is copied whole into one numpy
record (what libxmp reports per channel: the played period, the final volume, the
instrument, the row's event); notes are then found in those arrays at once. Because the
player itself moves through the song, jumps, pattern loops and breaks, speed and tempo
changes and pattern delays need no code here. A song is played to its loop point (or its
end, or ``MAX_SECONDS``); a module holding several songs (libxmp's *sequences*) gives one
``Song`` each.

What a note is, in libxmp's terms:

* it starts on the tick its row's note triggers: the row's first tick, or the tick a note
  delay (``EDx``/``SDx``) names; a tone portamento slides the sounding note and starts
  nothing, key-off and cut events start nothing;
* its pitch is read from the played period, so the sample's own transposition and finetune
  are in it: a pitch of 60 plays the sample at 8363 Hz, the trackers' common "middle C"
  (a sample recorded an octave away sounds an octave away; see ``module_grid``);
* it ends when the channel falls silent (volume 0: a cut, a fade, an envelope, the end of
  an unlooped sample) or the channel's next note starts.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

import numpy as np

from composer.corpus import libxmp as X
from composer.errors import MozartError

MAX_SECONDS = 15 * 60.0  # a song that never loops is cut here
MIX_RATE = 8000  # libxmp mixes audio we never listen to: as cheaply as it allows
SAMPLE_FRAMES = 16384  # how much of each sample ``Module.samples`` keeps (drum and pitch tests)
FX_EXTENDED, FX_TONEPORTA, FX_TONE_VSLIDE, FX_ARPEGGIO = 0x0E, 0x03, 0x05, 0x00
PORTAMENTO_EFFECTS = (FX_TONEPORTA, FX_TONE_VSLIDE, 0x62, 0x67, 0x6F, 0x7A)  # slide to the note, no new note
NOTE_DELAY = 0xD  # high nibble of an extended effect: delay the note by low-nibble ticks

_FRAME_DTYPE = np.dtype(X.FrameInfo)


class ModuleError(MozartError):
    """libxmp could not load or play the file; the message names it."""


@dataclass
class SampleInfo:
    name: str
    looped: bool
    frames: int  # length in sample frames
    audio: np.ndarray  # float32 in [-1, 1], the first SAMPLE_FRAMES frames


@dataclass
class Notes:
    """One song's notes as parallel arrays (one entry per note)."""

    channel: np.ndarray  # int
    instrument: np.ndarray  # libxmp's instrument index (0-based)
    sample: np.ndarray  # libxmp's sample index (0-based)
    row: np.ndarray  # float: rows played before the note starts (a delayed note starts within its row)
    end_row: np.ndarray  # float
    start: np.ndarray  # seconds
    end: np.ndarray  # seconds
    pitch: np.ndarray  # float MIDI pitch, from the played period
    volume: np.ndarray  # 0..64-ish, libxmp's final volume when the note starts
    arpeggio: np.ndarray  # int: the arpeggio effect's parameter on the note's row (0: none)

    def __len__(self) -> int:
        return len(self.pitch)

    def take(self, keep: np.ndarray) -> Notes:
        return Notes(**{name: getattr(self, name)[keep] for name in self.__dataclass_fields__})


@dataclass
class Song:
    """One song of a module: its notes and its row clock."""

    notes: Notes
    row_start: np.ndarray  # seconds at which each played row begins (plus the end time)
    row_speed: np.ndarray  # ticks of each played row (speed x (pattern delay + 1))
    bpm: np.ndarray  # the tracker BPM of each played row
    pattern_rows: np.ndarray  # rows of the pattern each played row belongs to
    looped: bool  # ended at the loop point (not at the end or at MAX_SECONDS)

    @property
    def rows(self) -> int:
        return len(self.row_speed)

    @property
    def seconds(self) -> float:
        return float(self.row_start[-1])


@dataclass
class Module:
    title: str
    format: str  # libxmp's name for it, e.g. "Protracker" or "Fast Tracker II"
    channels: int
    instruments: list[str]
    samples: list[SampleInfo]
    instrument_samples: list[list[int]] = field(default_factory=list)  # sample indices of each instrument
    songs: list[Song] = field(default_factory=list)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


def _samples(mod: X.Module) -> list[SampleInfo]:
    out = []
    for i in range(mod.smp):
        s = mod.xxs[i]
        frames = max(0, int(s.len))
        keep = min(frames, SAMPLE_FRAMES)
        if s.data and keep:
            if s.flg & X.SAMPLE_16BIT:
                raw = ctypes.string_at(s.data, keep * 2)
                audio = np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0
            else:
                raw = ctypes.string_at(s.data, keep)
                audio = np.frombuffer(raw, np.int8).astype(np.float32) / 128.0
        else:
            audio = np.zeros(0, np.float32)
        looped = bool(s.flg & X.SAMPLE_LOOP) and s.lpe - s.lps > 2
        out.append(SampleInfo(_text(bytes(s.name)), looped, frames, audio))
    return out


def _instrument_samples(mod: X.Module) -> list[list[int]]:
    out = []
    for i in range(mod.ins):
        ins = mod.xxi[i]
        out.append(sorted({ins.sub[k].sid for k in range(ins.nsm) if ins.sub and 0 <= ins.sub[k].sid < mod.smp}))
    return out


def read_module(data: bytes, name: str = "module") -> Module:
    """Load ``data`` (any format libxmp knows) and play each of its songs once."""
    lib = X.load()
    ctx = lib.xmp_create_context()
    if not ctx:
        raise ModuleError("libxmp could not create a player context.")
    buf = ctypes.create_string_buffer(bytes(data), len(data))
    try:
        if lib.xmp_load_module_from_memory(ctx, buf, len(data)) != 0:
            raise ModuleError(f"{name} is not a module libxmp can read.")
        try:
            info = X.ModuleInfo()
            lib.xmp_get_module_info(ctx, ctypes.byref(info))
            mod = info.mod.contents
            module = Module(
                title=_text(bytes(mod.name)),
                format=_text(bytes(mod.type)),
                channels=int(mod.chn),
                instruments=[_text(bytes(mod.xxi[i].name)) for i in range(mod.ins)],
                samples=_samples(mod),
                instrument_samples=_instrument_samples(mod),
            )
            entries = [info.seq_data[k].entry_point for k in range(max(1, info.num_sequences))]
            for k, entry in enumerate(entries):
                song = _play(lib, ctx, k, entry, min(module.channels, X.MAX_CHANNELS))
                if song is not None:
                    module.songs.append(song)
        finally:
            lib.xmp_release_module(ctx)
    finally:
        lib.xmp_free_context(ctx)
    return module


def _play(lib, ctx, sequence: int, entry: int, channels: int) -> Song | None:
    """Play sequence ``sequence`` from order ``entry`` to its loop point; None if it is empty."""
    if lib.xmp_start_player(ctx, MIX_RATE, X.FORMAT_MONO) != 0:
        raise ModuleError("libxmp could not start playing.")
    try:
        if entry:
            lib.xmp_set_position(ctx, entry)
        frame = X.FrameInfo()
        chunks, chunk, n = [], np.empty(4096, _FRAME_DTYPE), 0
        elapsed_us, looped = 0, False
        while True:
            if lib.xmp_play_frame(ctx) != 0:
                break
            lib.xmp_get_frame_info(ctx, ctypes.byref(frame))
            if frame.loop_count > 0 or (sequence and frame.sequence != sequence):
                looped = frame.loop_count > 0
                break
            ctypes.memmove(chunk[n:].ctypes.data, ctypes.addressof(frame), _FRAME_DTYPE.itemsize)
            n += 1
            if n == len(chunk):
                chunks.append(chunk)
                chunk, n = np.empty(4096, _FRAME_DTYPE), 0
            elapsed_us += frame.frame_time
            if elapsed_us > MAX_SECONDS * 1e6:
                break
        chunks.append(chunk[:n])
    finally:
        lib.xmp_end_player(ctx)
    ticks = np.concatenate(chunks)
    if len(ticks) == 0:
        return None
    return _song(ticks, channels, looped)


def _song(ticks: np.ndarray, channels: int, looped: bool) -> Song:
    frame = ticks["frame"].astype(np.int64)
    tick_us = ticks["frame_time"].astype(np.float64)
    tick_start = np.concatenate([[0.0], np.cumsum(tick_us)]) / 1e6  # seconds; one more than ticks
    first = frame == 0
    first[0] = True  # a song entered mid-row still starts a row
    row_of_tick = np.cumsum(first) - 1
    row_first_tick = np.flatnonzero(first)
    row_ticks = np.diff(np.append(row_first_tick, len(ticks)))
    row_start = np.append(tick_start[row_first_tick], tick_start[-1])

    ch = ticks["channel_info"][:, :channels]
    ev = ch["event"]
    note, fxt, fxp, f2t, f2p = (ev[k].astype(np.int64) for k in ("note", "fxt", "fxp", "f2t", "f2p"))
    volume = ch["volume"].astype(np.int64)
    period = ch["period"].astype(np.float64)

    def effect(kind: int, hi: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(present, parameter) of an effect in either effect column."""
        a = (fxt == kind) if hi is None else (fxt == kind) & (fxp >> 4 == hi)
        b = (f2t == kind) if hi is None else (f2t == kind) & (f2p >> 4 == hi)
        return a | b, np.where(a, fxp, np.where(b, f2p, 0))

    has_delay, delay_param = effect(FX_EXTENDED, NOTE_DELAY)
    delay = np.where(has_delay, delay_param & 0xF, 0)
    slide = np.isin(fxt, PORTAMENTO_EFFECTS) | np.isin(f2t, PORTAMENTO_EFFECTS)
    has_arp, arp_param = effect(FX_ARPEGGIO)
    arp = np.where(has_arp & (arp_param > 0), arp_param, 0)
    in_row = frame[:, None]
    trigger = (note >= 1) & (note <= 128) & ~slide & (in_row == delay) & (period > 0)
    # A note whose volume is 0 on its first two ticks is silent (a "ghost" row): not a note.
    vol_next = np.vstack([volume[1:], volume[-1:]])
    trigger &= (volume > 0) | (vol_next > 0)

    t_idx, c_idx = np.nonzero(trigger)
    order = np.lexsort((t_idx, c_idx))
    t_idx, c_idx = t_idx[order], c_idx[order]
    end_tick = np.empty(len(t_idx), np.int64)
    silent = (volume == 0) | (period <= 0)
    for c in range(channels):
        mine = np.flatnonzero(c_idx == c)
        if not len(mine):
            continue
        starts = t_idx[mine]
        quiet = np.flatnonzero(silent[:, c])
        # the first silent tick after the note's first two ticks, or the channel's next note
        quiet = np.append(quiet, len(ticks))  # the song's end silences every channel
        next_quiet = quiet[np.searchsorted(quiet, starts + 2)]
        next_start = np.append(starts[1:], len(ticks))
        end_tick[mine] = np.minimum(next_quiet, next_start)
    end_tick = np.maximum(end_tick, t_idx + 1)

    def row_position(tick: np.ndarray) -> np.ndarray:
        """Rows before ``tick``, with the part of its row already played."""
        tick = np.minimum(tick, len(ticks) - 1)
        r = row_of_tick[tick]
        return r + (tick - row_first_tick[r]) / np.maximum(row_ticks[r], 1)

    end_row = np.where(end_tick >= len(ticks), len(row_ticks), row_position(end_tick))
    with np.errstate(divide="ignore"):
        pitch = 12.0 * np.log2(X.PERIOD_BASE * 4096.0 / period[t_idx, c_idx])
    notes = Notes(
        channel=c_idx,
        instrument=ch["instrument"][t_idx, c_idx].astype(np.int64),
        sample=ch["sample"][t_idx, c_idx].astype(np.int64),
        row=row_position(t_idx),
        end_row=end_row,
        start=tick_start[t_idx],
        end=tick_start[end_tick],
        pitch=pitch,
        volume=np.maximum(volume[t_idx, c_idx], vol_next[t_idx, c_idx]),
        arpeggio=arp[t_idx, c_idx],
    )
    keep = np.isfinite(notes.pitch)
    notes = notes.take(keep)
    order = np.lexsort((notes.channel, notes.row))
    return Song(
        notes=notes.take(order),
        row_start=row_start,
        row_speed=row_ticks,
        bpm=ticks["bpm"][row_first_tick].astype(np.int64),
        pattern_rows=ticks["num_rows"][row_first_tick].astype(np.int64),
        looped=looped,
    )

