"""The chip synthesiser, measured: length, per-voice level, peaks, clicks, drum colours."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from composer.music import tokens as T
from composer.music.grid import Piece
from composer.render import audio as A
from composer.render.chip import TAIL_SECONDS, ChipSynth, frame_samples
from composer.render.demo import demo_piece

SR = 44100


def solo(piece: Piece, voice: str) -> Piece:
    """The piece with every other voice silenced."""
    grid = piece.grid.copy()
    keep = T.VOICE_INDEX[voice]
    grid[:, [v for v in range(T.N_VOICES) if v != keep]] = T.REST
    return piece.copy(grid=grid)


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def centroid(x: np.ndarray, sr: int = SR) -> float:
    """Spectral centroid (Hz): the power-weighted mean frequency."""
    power = np.abs(np.fft.rfft(x, 1 << 16)) ** 2
    freqs = np.fft.rfftfreq(1 << 16, 1 / sr)
    return float((freqs * power).sum() / power.sum())


def put(piece: Piece, voice: str, start: int, length: int, pitch: int) -> None:
    v = T.VOICE_INDEX[voice]
    piece.grid[start, v] = T.onset(pitch)
    piece.grid[start + 1 : start + length, v] = T.HOLD


@pytest.fixture(scope="module")
def synth() -> ChipSynth:
    return ChipSynth()


@pytest.mark.parametrize(
    "bars, tempo, time_signature",
    [(8, 120.0, (4, 4)), (6, 90.0, (3, 4)), (5, 151.5, (6, 8)), (3, 60.0, (7, 8))],
    ids=lambda p: str(p),
)
def test_length_matches_bars_and_tempo(synth, bars, tempo, time_signature):
    piece = demo_piece(bars, tempo) if time_signature == (4, 4) else Piece.empty(bars, time_signature, tempo=tempo)
    if time_signature != (4, 4):
        put(piece, "lead", 0, piece.n_frames, 72)
    x = synth.render(piece)
    beats_per_bar = time_signature[0] * 4 / time_signature[1]
    expected = bars * beats_per_bar * 60 / tempo
    music = len(x) / SR - TAIL_SECONDS
    assert abs(music - expected) / expected < 0.01
    assert x.shape[1] == 2 and x.dtype == np.float32


def test_frame_positions_do_not_drift():
    piece = Piece.empty(64, tempo=137.0)  # 5 s tempo-to-sample ratios that are not integers
    starts = frame_samples(piece, SR)
    assert starts[-1] == round(piece.seconds * SR)
    assert set(np.diff(starts)) <= {int(SR * 60 / 137 / 4), int(SR * 60 / 137 / 4) + 1}


@pytest.mark.parametrize("voice", T.VOICES)
def test_every_voice_is_audible(synth, voice):
    piece = solo(demo_piece(4), voice)
    x = synth.render(piece)
    level = rms_db(x)
    assert level > -30.0, f"{voice} is too quiet: {level:.1f} dBFS"
    # and it is the voice, not leakage from elsewhere: with the voice silenced too, silence
    assert not synth.render(solo(piece, "lead" if voice != "lead" else "counter")).any()


def test_voice_balance_leaves_the_lead_on_top(synth):
    piece = demo_piece(8)
    levels = {v: rms_db(synth.render(solo(piece, v))) for v in T.VOICES}
    assert levels["lead"] > levels["counter"] > levels["harmony"]
    assert levels["lead"] > levels["drums"]
    assert max(levels.values()) - min(levels.values()) < 18  # nothing buried


def test_loud_dense_piece_stays_below_full_scale(synth):
    piece = Piece.empty(4, tempo=180.0)
    for v, base in zip(T.PITCHED_VOICES, (84, 76, 64, 36)):
        for f in range(0, piece.n_frames, 2):  # re-struck every 8th: every attack overlaps
            put(piece, v, f, 2, base + (f // 2) % 5)
    kit = [T.drum_token(name) for name in ("kick", "cymbal", "snare", "tom")]
    piece.grid[:, T.DRUM_VOICE] = [kit[f % 4] for f in range(piece.n_frames)]
    raw = synth.render(piece)
    assert A.peak(raw) > 1.0  # the raw mix would clip...
    mastered = A.master(raw, SR)
    assert A.peak(mastered) <= A.db_to_gain(A.CEILING_DB) + 1e-6  # ...the master does not
    assert A.peak(mastered) <= 1.0


def test_no_clicks_at_note_boundaries(synth):
    """Legato notes of different pitches: at each boundary the signal is near zero."""
    piece = Piece.empty(2, tempo=120.0)
    pitches = [60, 67, 64, 72, 71, 62, 69, 65]
    for i, p in enumerate(pitches):
        put(piece, "counter", 4 * i, 4, p)
    x = synth.render(solo(piece, "counter"), stereo=False)[:, 0]
    starts = frame_samples(piece, SR)
    peak = np.abs(x).max()
    for f in range(4, 4 * len(pitches), 4):
        s = starts[f]
        assert np.abs(x[s - 2 : s + 2]).max() < 0.02 * peak, f"click at frame {f}"
    assert abs(x[-1]) < 1e-6  # ends in silence


def test_high_notes_are_band_limited(synth):
    """A high pulse note has its energy on harmonics of f0, not on aliases between them."""
    piece = Piece.empty(2, tempo=120.0)
    put(piece, "counter", 0, 32, 100)  # 2637 Hz: a naive pulse would alias from the 9th harmonic
    x = synth.render(piece, stereo=False)[:, 0]
    steady = x[SR // 2 : SR // 2 + 32768] * np.hanning(32768)
    power = np.abs(np.fft.rfft(steady)) ** 2
    freqs = np.fft.rfftfreq(32768, 1 / SR)
    f0 = 440 * 2 ** ((100 - 69) / 12)
    harmonic = np.abs(freqs / f0 - np.round(freqs / f0)) * f0 < 25  # within 25 Hz of k*f0
    assert power[~harmonic].sum() / power.sum() < 1e-3


def test_long_lead_notes_have_vibrato_short_ones_do_not(synth):
    def zero_crossing_spread(pitch_voice: str) -> float:
        piece = Piece.empty(2, tempo=120.0)
        put(piece, pitch_voice, 0, 32, 69)
        x = synth.render(solo(piece, pitch_voice), stereo=False)[:, 0]
        seg = x[int(0.6 * SR) : int(1.6 * SR)]
        # frequency per 50 ms window from the spectral peak
        peaks = []
        for i in range(0, len(seg) - 4096, 2205):
            spec = np.abs(np.fft.rfft(seg[i : i + 4096] * np.hanning(4096), 1 << 16))
            peaks.append(np.argmax(spec) * SR / (1 << 16))
        return float(np.ptp(peaks))

    assert zero_crossing_spread("lead") > 3.0  # ~14 cents around 440 Hz: +-3.5 Hz
    assert zero_crossing_spread("counter") < 1.0


def test_each_drum_class_sounds_different(synth):
    centroids = {}
    for name in T.DRUM_CLASSES:
        piece = Piece.empty(1, tempo=120.0)
        piece.grid[0, T.DRUM_VOICE] = T.drum_token(name)
        x = synth.render(piece, stereo=False)[:, 0]
        assert rms_db(x) > -40, f"{name} is silent"
        centroids[name] = centroid(x)
    for a, b in itertools.combinations(T.DRUM_CLASSES, 2):
        ratio = max(centroids[a], centroids[b]) / min(centroids[a], centroids[b])
        assert ratio > 1.25, f"{a} ({centroids[a]:.0f} Hz) and {b} ({centroids[b]:.0f} Hz) sound alike"
    assert centroids["kick"] < centroids["tom"] < centroids["snare"] < centroids["hat"]


def test_loudness_is_normalised_between_pieces(synth):
    sparse = Piece.empty(4, tempo=80.0)
    put(sparse, "harmony", 0, 16, 60)
    put(sparse, "bass", 32, 16, 40)
    dense = demo_piece(4, 160.0)
    levels = [A.gated_loudness_db(A.master(synth.render(p), SR), SR) for p in (sparse, dense)]
    for level in levels:
        assert abs(level - A.TARGET_LOUDNESS_DB) < 1.5, levels


def test_rendering_is_deterministic(synth):
    piece = demo_piece(2)
    assert np.array_equal(synth.render(piece), ChipSynth().render(piece))


def test_empty_piece_is_silence(synth):
    x = synth.render(Piece.empty(2))
    assert not x.any()
    assert not A.master(x, SR).any()


def test_limiter_turns_peaks_down_smoothly():
    t = np.arange(SR) / SR
    x = (0.5 * np.sin(2 * np.pi * 110 * t)).astype(np.float32)[:, None]
    x[SR // 2 : SR // 2 + 200] *= 3.0  # a 1.5 peak for 4.5 ms
    y = A.limit(x.copy(), 0.9)
    assert A.peak(y) <= 0.9
    gain = y[:, 0] / np.where(np.abs(x[:, 0]) > 0.05, x[:, 0], np.nan)
    steps = np.abs(np.diff(gain))
    assert np.nanmax(steps) < 0.01  # no sample-to-sample gain jumps (no clicks)
    assert np.nanmin(gain[: SR // 2 - 1024]) == pytest.approx(1.0)  # untouched far before the peak
    assert np.nanmin(gain[SR // 2 + 4096 :]) == pytest.approx(1.0)  # released ~50 ms after it


def test_gated_loudness_ignores_silence():
    t = np.arange(4 * SR) / SR
    tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[:, None]
    padded = np.concatenate([tone, np.zeros_like(tone), np.zeros_like(tone)])
    assert A.gated_loudness_db(padded, SR) == pytest.approx(A.gated_loudness_db(tone, SR), abs=0.05)
    assert A.gated_loudness_db(tone, SR) == pytest.approx(20 * np.log10(0.1 / np.sqrt(2)), abs=0.05)
    assert A.gated_loudness_db(np.zeros((SR, 2), np.float32), SR) == -np.inf


def test_stereo_image_centred_voices_in_the_middle_counter_and_harmony_apart(synth):
    piece = demo_piece(2)
    for voice, side in (("lead", 0), ("bass", 0), ("drums", 0), ("counter", -1), ("harmony", 1)):
        x = synth.render(solo(piece, voice))
        left, right = rms_db(x[:, 0]), rms_db(x[:, 1])
        if side == 0:
            assert abs(left - right) < 0.01, voice
        else:
            assert 1.0 < side * (right - left) < 6.0, voice  # slight, not hard-panned
    mono = synth.render(piece, stereo=False)
    assert mono.shape[1] == 1
    assert abs(rms_db(mono) - rms_db(synth.render(piece))) < 1.5
