"""``chip``: a NumPy synthesiser in the spirit of the NES sound chip (2A03).

Rendered straight from the grid at the piece's tempo, one mono buffer per voice:

* lead / counter / harmony: pulse waves with 12.5 %, 25 % and 50 % duty;
* bass: the NES's 32-step (4-bit) triangle;
* drums: 15-bit LFSR noise (long and short "metallic" modes) clocked at NES noise
  rates, plus swept triangles for kick and tom and two square waves for the cowbell.

Pitched waves are band-limited wavetables: one single cycle per waveform, truncated in
the Fourier domain to the harmonics below ~0.45 x the sample rate for the highest note of
each half-octave band, so high notes do not alias. A note is rendered as a table lookup
with a 32-bit fixed-point phase (wrapping is free), times an envelope table slice, with
short ramps at both ends so that no note boundary clicks. Identical notes (same voice,
pitch and length in samples, which is most of them in real music) are rendered once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from composer.music import tokens as T
from composer.music.grid import Piece

SAMPLE_RATE = 44100
TAIL_SECONDS = 0.75  # silence-to-be after the last frame, for releases and drum decays

_TABLE_BITS = 12
_TABLE_SIZE = 1 << _TABLE_BITS  # samples per single-cycle wavetable
_BAND_SEMITONES = 6  # one band-limited table per half octave
_MAX_HARMONIC_FRACTION = 0.45  # highest harmonic kept, as a fraction of the sample rate


@dataclass(frozen=True)
class VoiceSound:
    """How one pitched voice sounds."""

    wave: str  # "pulse" or "triangle"
    duty: float = 0.5  # pulse duty cycle (0.125, 0.25, 0.5)
    gain: float = 1.0  # mix level before the master stage
    attack_ms: float = 3.0  # ramp from silence
    decay_ms: float = 120.0  # time constant from full level down to sustain
    sustain: float = 0.7  # level held after the decay, 0..1
    release_ms: float = 6.0  # ramp to silence at the end of the note (inside the note)
    vibrato: bool = False  # add vibrato to long notes


@dataclass(frozen=True)
class ChipConfig:
    sample_rate: int = SAMPLE_RATE  # Hz; 44.1 kHz keeps the pulse harmonics up to ~20 kHz
    voices: dict[str, VoiceSound] = field(
        default_factory=lambda: {
            "lead": VoiceSound("pulse", duty=0.125, gain=0.55, decay_ms=150, sustain=0.75, vibrato=True),
            "counter": VoiceSound("pulse", duty=0.25, gain=0.36, decay_ms=110, sustain=0.65),
            "harmony": VoiceSound("pulse", duty=0.5, gain=0.27, attack_ms=5, decay_ms=250, sustain=0.6),
            "bass": VoiceSound("triangle", gain=0.50, attack_ms=2, decay_ms=400, sustain=0.85),
        }
    )
    drums_gain: float = 0.60  # mix level of the noise channel
    vibrato_delay_s: float = 0.18  # a note must last this long before vibrato starts
    vibrato_rate_hz: float = 5.5
    vibrato_cents: float = 14.0  # peak deviation
    # Stereo position per voice, -1 left .. +1 right: slight, like a console's stereo mod.
    pan: dict[str, float] = field(
        default_factory=lambda: {"lead": 0.0, "counter": -0.35, "harmony": 0.35, "bass": 0.0, "drums": 0.0}
    )
    tail_seconds: float = TAIL_SECONDS
    reuse_notes: bool = True  # render identical notes once (False: worst case, for benchmarks)


# -- wavetables ----------------------------------------------------------------------
def _pulse_cycle(duty: float) -> np.ndarray:
    phase = np.arange(_TABLE_SIZE) / _TABLE_SIZE
    return np.where(phase < duty, 1.0, -1.0)


def _triangle_cycle() -> np.ndarray:
    """The NES triangle: 32 steps of a 4-bit counter, 15..0..15."""
    steps = np.concatenate([np.arange(15, -1, -1), np.arange(0, 16)])  # 32 steps
    cycle = np.repeat(steps, _TABLE_SIZE // 32).astype(np.float64)
    return (cycle - 7.5) / 7.5


@lru_cache(maxsize=None)
def _band_tables(wave: str, duty: float, sample_rate: int) -> np.ndarray:
    """(bands, TABLE_SIZE) float32: the cycle band-limited for each half-octave band.

    The DC term is removed (a 12.5 % pulse would otherwise sit far off zero) and each
    table is scaled to unit RMS, so the duty cycle changes colour, not loudness.
    """
    cycle = _pulse_cycle(duty) if wave == "pulse" else _triangle_cycle()
    spectrum = np.fft.rfft(cycle)
    spectrum[0] = 0.0
    n_bands = -(-(T.PITCH_MAX - T.PITCH_MIN + 1) // _BAND_SEMITONES)
    tables = np.empty((n_bands, _TABLE_SIZE), np.float32)
    for b in range(n_bands):
        top_pitch = T.PITCH_MIN + (b + 1) * _BAND_SEMITONES - 1
        top_freq = 440.0 * 2 ** ((top_pitch - 69) / 12)
        harmonics = max(1, int(_MAX_HARMONIC_FRACTION * sample_rate / top_freq))
        limited = spectrum.copy()
        limited[harmonics + 1 :] = 0.0
        table = np.fft.irfft(limited, _TABLE_SIZE)
        tables[b] = table / np.sqrt(np.mean(table**2))
    return tables


@lru_cache(maxsize=4)
def _ramp_u32(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.uint32)


def _arange_u32(n: int) -> np.ndarray:
    base = _ramp_u32(1 << 20)
    if n <= len(base):
        return base[:n]
    return np.arange(n, dtype=np.uint32)


@lru_cache(maxsize=32)
def _envelope_table(attack_ms: float, decay_ms: float, sustain: float, sample_rate: int) -> np.ndarray:
    """Attack ramp then exponential decay to sustain, for the first ~8 decay constants."""
    attack = max(1, int(attack_ms * 1e-3 * sample_rate))
    length = attack + int(8 * decay_ms * 1e-3 * sample_rate) + 1
    t = np.arange(length - attack, dtype=np.float64)
    decay = sustain + (1.0 - sustain) * np.exp(-t / (decay_ms * 1e-3 * sample_rate))
    env = np.concatenate([np.linspace(0.0, 1.0, attack, endpoint=False), decay])
    return env.astype(np.float32)


# -- LFSR noise ----------------------------------------------------------------------
@lru_cache(maxsize=2)
def lfsr_sequence(short: bool) -> np.ndarray:
    """One period of the NES noise generator as +-1 (32767 steps long mode, 93 short).

    15-bit shift register; feedback = bit 0 XOR bit 1 (long) or bit 0 XOR bit 6 (short).
    """
    reg, tap = 1, 6 if short else 1
    states: dict[int, int] = {}  # register value -> step at which it was first seen
    bits = []
    while reg not in states:
        states[reg] = len(bits)
        bits.append(reg & 1)
        feedback = (reg ^ (reg >> tap)) & 1
        reg = (reg >> 1) | (feedback << 14)
    cycle = np.array(bits[states[reg] :], np.int8)  # drop any lead-in before the cycle
    return np.where(cycle == 1, 1.0, -1.0).astype(np.float32)


# NES NTSC noise clock rates (CPU 1.789773 MHz / timer period), brightest first.
NES_NOISE_RATES = tuple(1_789_773 / p for p in (4, 8, 16, 32, 64, 96, 128, 160, 202, 254, 380, 508, 762, 1016))


def _noise(n: int, rate: float, sample_rate: int, short: bool = False, seed: int = 0) -> np.ndarray:
    seq = lfsr_sequence(short)
    k = (np.arange(n) * (rate / sample_rate) + seed).astype(np.int64)
    return seq[k % len(seq)]


def _sweep(n: int, f_start: float, f_end: float, tau_s: float, sample_rate: int, wave: str) -> np.ndarray:
    t = np.arange(n) / sample_rate
    freq = f_end + (f_start - f_end) * np.exp(-t / tau_s)
    phase = np.cumsum(freq) / sample_rate
    if wave == "sine":
        return np.sin(2 * np.pi * phase)
    tri = _band_tables("triangle", 0.5, sample_rate)[0]
    return tri[(phase * _TABLE_SIZE).astype(np.int64) % _TABLE_SIZE]


def _decay(n: int, tau_s: float, sample_rate: int, attack_s: float = 0.0005) -> np.ndarray:
    t = np.arange(n) / sample_rate
    env = np.exp(-t / tau_s) * np.minimum(1.0, t / attack_s)
    # end on exactly zero: a short ramp over the last 3 ms
    tail = min(n, int(0.003 * sample_rate))
    env[n - tail :] *= np.linspace(1.0, 0.0, tail)
    return env


def _highpass(x: np.ndarray) -> np.ndarray:
    return np.diff(x, prepend=x[:1]) * 0.6


@lru_cache(maxsize=4)
def drum_samples(sample_rate: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
    """One float32 sample per drum class, each with its own envelope and colour."""
    sr = sample_rate
    r = NES_NOISE_RATES

    def n_of(seconds: float) -> int:
        return int(seconds * sr)

    out: dict[str, np.ndarray] = {}
    n = n_of(0.30)  # kick: triangle swept 160 -> 45 Hz, a click of bright noise on top
    out["kick"] = 1.1 * _sweep(n, 160, 45, 0.03, sr, "triangle") * _decay(n, 0.09, sr) + 0.25 * _noise(
        n, r[6], sr
    ) * _decay(n, 0.004, sr)
    n = n_of(0.22)  # snare: mid-rate noise and a short 190 Hz body
    out["snare"] = 0.75 * _noise(n, r[6], sr, seed=11) * _decay(n, 0.06, sr) + 0.45 * _sweep(
        n, 240, 180, 0.02, sr, "triangle"
    ) * _decay(n, 0.03, sr)
    n = n_of(0.07)  # closed hat: white noise, high-passed, very short
    out["hat"] = 0.9 * _highpass(_noise(n, r[0], sr, seed=101)) * _decay(n, 0.014, sr)
    n = n_of(0.40)  # open hat: noise a little darker than the closed hat, long
    out["open_hat"] = 0.45 * _noise(n, r[2], sr, seed=301) * _decay(n, 0.12, sr)
    n = n_of(0.36)  # tom: triangle swept 220 -> 110 Hz with a little low noise
    out["tom"] = 0.95 * _sweep(n, 220, 110, 0.06, sr, "triangle") * _decay(n, 0.12, sr) + 0.15 * _noise(
        n, r[8], sr, seed=7
    ) * _decay(n, 0.03, sr)
    n = n_of(1.00)  # cymbal (crash/ride): metallic short-mode noise, long decay
    out["cymbal"] = 0.40 * _noise(n, r[3], sr, short=True) * _decay(n, 0.35, sr)
    n = n_of(0.18)  # perc: the 808-style cowbell, two square waves at 540 and 800 Hz
    t = np.arange(n) / sr
    bell = np.sign(np.sin(2 * np.pi * 540 * t)) + np.sign(np.sin(2 * np.pi * 800 * t))
    out["perc"] = 0.30 * _smooth(bell) * _decay(n, 0.05, sr)
    return {k: v.astype(np.float32) for k, v in out.items()}


def _smooth(x: np.ndarray) -> np.ndarray:
    """A gentle 3-tap low-pass: takes the aliasing edge off naive square waves."""
    return np.convolve(x, [0.25, 0.5, 0.25], mode="same")


# -- rendering -----------------------------------------------------------------------
def frame_samples(piece: Piece, sample_rate: int) -> np.ndarray:
    """Sample index at which each frame starts (n_frames + 1 entries, the last = the end)."""
    samples_per_frame = sample_rate * 60.0 / (piece.tempo * T.FRAMES_PER_QUARTER)
    return np.round(np.arange(piece.n_frames + 1) * samples_per_frame).astype(np.int64)


def _freq(pitch: int) -> float:
    return 440.0 * 2 ** ((pitch - 69) / 12)


class ChipSynth:
    """Renders pieces; holds nothing but config and caches, so one instance can be shared."""

    def __init__(self, config: ChipConfig | None = None):
        self.config = config or ChipConfig()

    def length(self, piece: Piece) -> int:
        sr = self.config.sample_rate
        return int(frame_samples(piece, sr)[-1]) + int(self.config.tail_seconds * sr)

    def render_voice(self, piece: Piece, name: str) -> np.ndarray:
        """Mono float32 buffer of one voice (not mixed, not normalised)."""
        buf = np.zeros(self.length(piece), np.float32)
        starts = frame_samples(piece, self.config.sample_rate)
        v = T.VOICE_INDEX[name]
        if v == T.DRUM_VOICE:
            self._render_drums(piece, starts, buf)
        else:
            self._render_pitched(piece, v, starts, buf)
        return buf

    def render(self, piece: Piece, voices: tuple[str, ...] = T.VOICES, stereo: bool = True) -> np.ndarray:
        """(samples, 2) float32 (or (samples, 1) if not ``stereo``) mix of ``voices``.

        Voices are mixed as they are made, so memory stays at the mix plus one voice.
        """
        mix = np.zeros((self.length(piece), 2 if stereo else 1), np.float32)
        for name in voices:
            buf = self.render_voice(piece, name)
            p = float(self.config.pan.get(name, 0.0)) if stereo else 0.0
            if p == 0.0:  # centre (and mono): unit gain on every channel
                for c in range(mix.shape[1]):
                    mix[:, c] += buf
                continue
            # constant-power pan law, scaled so that the centre would have unit gain
            angle = (p + 1) * np.pi / 4
            mix[:, 0] += np.float32(np.cos(angle) * np.sqrt(2)) * buf
            mix[:, 1] += np.float32(np.sin(angle) * np.sqrt(2)) * buf
        return mix

    # -- pitched voices ---------------------------------------------------------------
    def _render_pitched(self, piece: Piece, v: int, starts: np.ndarray, buf: np.ndarray) -> None:
        cfg = self.config
        sr = cfg.sample_rate
        sound = cfg.voices[T.VOICES[v]]
        tables = _band_tables(sound.wave, sound.duty if sound.wave == "pulse" else 0.5, sr)
        env = _envelope_table(sound.attack_ms, sound.decay_ms, sound.sustain, sr) * np.float32(sound.gain)
        sustain = np.float32(sound.sustain * sound.gain)
        release = max(2, int(sound.release_ms * 1e-3 * sr))
        release_ramp = np.linspace(1.0, 0.0, release, dtype=np.float32)
        vibrato_from = int(cfg.vibrato_delay_s * sr)
        shift = np.uint32(32 - _TABLE_BITS)
        cache: dict[tuple[int, int], np.ndarray] = {}

        column = piece.grid[:, v]
        onsets = np.flatnonzero(T.is_onset(column))
        if len(onsets) == 0:
            return
        # a note ends at the next frame that is not HOLD (or at the end of the grid)
        not_hold = np.append(np.flatnonzero(column != T.HOLD), len(column))
        ends = not_hold[np.searchsorted(not_hold, onsets, side="right")]
        pitches = T.pitch_of(column[onsets].astype(np.int64))
        s0 = starts[onsets]
        s1 = starts[ends]
        for start, stop, pitch in zip(s0.tolist(), s1.tolist(), pitches.tolist()):
            n = stop - start
            key = (pitch, n)
            wave = cache.get(key) if cfg.reuse_notes else None
            if wave is None:
                f = _freq(pitch)
                inc = np.uint32(round(f / sr * 2**32) % 2**32)
                phase = _arange_u32(n) * inc
                if sound.vibrato and n > vibrato_from + sr // 10:
                    phase = self._add_vibrato(phase, f, vibrato_from)
                phase >>= shift
                band = min(len(tables) - 1, (pitch - T.PITCH_MIN) // _BAND_SEMITONES)
                wave = tables[band].take(phase)
                if n <= len(env):
                    wave *= env[:n]
                else:
                    wave[: len(env)] *= env
                    wave[len(env) :] *= sustain
                r = min(release, n // 2)
                wave[n - r :] *= release_ramp[release - r :] if r < release else release_ramp
                cache[key] = wave
            buf[start:stop] += wave

    def _add_vibrato(self, phase: np.ndarray, f: float, delay: int) -> np.ndarray:
        """Phase-modulation form of a sine vibrato that fades in after ``delay`` samples."""
        cfg = self.config
        sr = cfg.sample_rate
        n = len(phase)
        t = np.arange(n - delay, dtype=np.float64) / sr
        depth = 2 ** (cfg.vibrato_cents / 1200) - 1  # relative frequency deviation
        fade = np.minimum(1.0, t / 0.25)
        # instantaneous frequency f (1 + depth fade sin) integrates to this phase offset (cycles)
        w = 2 * np.pi * cfg.vibrato_rate_hz
        offset = fade * depth * f / w * (1 - np.cos(w * t))
        phase = phase.copy()
        phase[delay:] += (offset * 2**32).astype(np.int64).astype(np.uint32)
        return phase

    # -- drums ------------------------------------------------------------------------
    def _render_drums(self, piece: Piece, starts: np.ndarray, buf: np.ndarray) -> None:
        sr = self.config.sample_rate
        samples = drum_samples(sr)
        column = piece.grid[:, T.DRUM_VOICE]
        hits = np.flatnonzero(column)
        fpb = piece.frames_per_bar
        gain = self.config.drums_gain
        scaled = {name: s * np.float32(gain) for name, s in samples.items()}
        ghost = {name: s * np.float32(gain * 0.8) for name, s in samples.items()}
        n = len(buf)
        for f in hits.tolist():
            name = T.drum_name(int(column[f]))
            s = int(starts[f])
            sample = scaled[name] if f % 4 == 0 or f % fpb == 0 else ghost[name]
            m = min(len(sample), n - s)
            buf[s : s + m] += sample[:m]
