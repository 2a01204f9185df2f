"""render(): formats, files, tags, SoundFont presets and fallbacks, errors, the CLI."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import warnings
import wave

import mido
import numpy as np
import pytest
from click.testing import CliRunner

from composer.music import tokens as T
from composer.errors import MozartError, RenderError
from composer.music.grid import Piece
from composer.music.midi_io import to_midi
from composer.render import SOUNDS, Rendered, UnknownSoundError, list_sounds, render
from composer.render import audio as A
from composer.render import soundfont as sf
from composer.render.api import TAIL_SECONDS, preset_midi, synthesise
from composer.cli.render import render_command
from composer.render.demo import demo_piece


@pytest.fixture
def ffmpeg() -> str:
    path = A.find_ffmpeg()
    if path is None:
        pytest.skip("no ffmpeg (system or imageio-ffmpeg)")
    return path


@pytest.fixture
def soundfont(monkeypatch) -> None:
    """The bundled SoundFont (ignoring any $MOZART_SOUNDFONT of the person running the tests)."""
    monkeypatch.delenv(sf.SOUNDFONT_ENV, raising=False)
    if sf.bundled_soundfont() is None:
        pytest.skip("no SoundFont (pretty_midi's TimGM6mb.sf2)")
    try:
        import midirenderer  # noqa: F401
    except ImportError:
        pytest.skip("midirenderer is not installed")


@pytest.fixture(scope="module")
def piece() -> Piece:
    return demo_piece(4, 120.0)  # 8 s, all voices, sections, seed 0


def solo(piece: Piece, voice: str) -> Piece:
    grid = piece.grid.copy()
    grid[:, [v for v in range(T.N_VOICES) if v != T.VOICE_INDEX[voice]]] = T.REST
    return piece.copy(grid=grid)


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())
        return x.astype(np.float32) / 32768, w.getframerate()


# -- the catalogue and its errors -----------------------------------------------------------
def test_sounds_are_listed_with_descriptions():
    names = [p.name for p in list_sounds()]
    assert names[0] == "chip" and {"orchestra", "piano"} <= set(names)
    for preset in list_sounds():
        assert preset.description
        assert set(preset.programs) == set(T.VOICES)


def test_unknown_sound_lists_the_sounds(piece):
    with pytest.raises(UnknownSoundError, match="Known sounds: chip, orchestra, piano") as err:
        render(piece, sound="chiptune", formats=("wav",))
    assert isinstance(err.value, RenderError) and isinstance(err.value, MozartError)
    assert "'chiptune'" in str(err.value)


def test_unknown_format_is_a_render_error(piece):
    with pytest.raises(RenderError, match="Known formats: mp3, mid, png, ogg, wav"):
        render(piece, formats=("flac",))


def test_sound_names_are_case_insensitive(piece):
    assert render(piece, sound="Chip", formats=("mid",)).sound == "chip"


# -- audio files -------------------------------------------------------------------------------
def test_wav_has_the_length_of_the_piece_plus_the_tail(piece):
    rendered = render(piece, formats=("wav",))
    x, rate = read_wav(rendered["wav"])
    assert rate == 44100 and x.shape[1] == 2
    assert abs(len(x) / rate - TAIL_SECONDS - 8.0) / 8.0 < 0.01
    assert rendered.seconds == pytest.approx(len(x) / rate)
    assert rendered.music_seconds == pytest.approx(8.0)
    assert np.abs(x).max() <= 1.0
    assert abs(A.gated_loudness_db(x, rate) - A.TARGET_LOUDNESS_DB) < 1.0
    assert np.abs(x[-10:]).max() < 1e-3  # faded out


def test_mp3_decodes_with_pydub_to_the_right_duration(piece, ffmpeg):
    with warnings.catch_warnings():  # pydub warns at import when ffmpeg is not on PATH
        warnings.simplefilter("ignore", RuntimeWarning)
        from pydub import AudioSegment

    rendered = render(piece, formats=("mp3",))
    mp3 = rendered["mp3"]
    AudioSegment.converter = ffmpeg
    seg = AudioSegment.from_file(io.BytesIO(mp3), format="mp3", codec="mp3")
    assert abs(seg.duration_seconds - rendered.seconds) < 0.05
    x = np.frombuffer(seg.raw_data, "<i2").astype(np.float32) / 32768
    assert np.abs(x).max() <= 1.0
    assert abs(A.gated_loudness_db(x.reshape(-1, seg.channels), seg.frame_rate) - A.TARGET_LOUDNESS_DB) < 1.5


def test_mp3_carries_id3_tags(ffmpeg):
    piece = demo_piece(2)
    piece.title, piece.extra = "Hyrule Fugue", {"seed": 4242}
    mp3 = render(piece, formats=("mp3",))["mp3"]
    head = mp3[:4096]
    assert head.startswith(b"ID3")
    assert b"Hyrule Fugue" in head
    assert b"zelda \xc3\x97 bach" in head  # artist/style, UTF-8 "×"
    assert b"seed" in head and b"4242" in head


def test_ogg_and_wav_on_request(piece, ffmpeg):
    rendered = render(piece, formats=("ogg", "wav"))
    assert list(rendered.data) == ["ogg", "wav"]
    assert rendered["ogg"].startswith(b"OggS")
    x, rate = A.decode(rendered["ogg"], "ogg")
    assert abs(len(x) / rate - rendered.seconds) < 0.05


def test_128_bars_at_120_bpm_make_an_mp3_under_8_mb(ffmpeg):
    piece = Piece.empty(128, tempo=120.0)
    loop = demo_piece(8).grid
    piece.grid[:] = np.tile(loop, (16, 1))
    rendered = render(piece, formats=("mp3",))
    assert rendered.seconds == pytest.approx(256 + TAIL_SECONDS)
    assert len(rendered["mp3"]) < 8_000_000


def test_missing_ffmpeg_is_a_clear_error(piece, monkeypatch):
    def no_binary():
        raise RuntimeError("No ffmpeg exe could be found.")

    monkeypatch.setattr(A.shutil, "which", lambda name: None)
    try:
        import imageio_ffmpeg
    except ImportError:
        pass  # nothing to hide
    else:
        monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", no_binary)
    with pytest.raises(RenderError, match="needs ffmpeg.*imageio-ffmpeg"):
        render(piece, formats=("mp3",))
    assert render(piece, formats=("wav", "mid")).data.keys() == {"wav", "mid", "beats"}  # no ffmpeg needed


# -- MIDI ----------------------------------------------------------------------------------
def test_midi_has_one_track_per_voice_with_the_preset_programs(piece):
    data = render(piece, sound="orchestra", formats=("mid",))["mid"]
    midi = mido.MidiFile(file=io.BytesIO(data))
    names = [next(m.name for m in track if m.type == "track_name") for track in midi.tracks]
    assert names == list(T.VOICES)
    programs = SOUNDS["orchestra"].programs
    for track, name in zip(midi.tracks, names):
        notes = [m for m in track if m.type == "note_on" and m.velocity > 0]
        assert notes, name
        if name == "drums":
            assert {m.channel for m in notes} == {9}
        else:
            assert [m.program for m in track if m.type == "program_change"] == [programs[name]]
        volumes = [m.value for m in track if m.type == "control_change" and m.control == 7]
        assert volumes[0] == SOUNDS["orchestra"].volumes[name]


def test_midi_is_readable_by_music21(piece):
    from music21 import converter

    score = converter.parseData(preset_midi(piece, SOUNDS["piano"]), format="midi")
    assert len(score.parts) == 5


def test_exported_midi_ends_exactly_with_the_music_while_synthesis_gets_a_tail(piece):
    exported = mido.MidiFile(file=io.BytesIO(render(piece, formats=("mid",))["mid"]))
    assert exported.length == pytest.approx(piece.seconds, abs=1e-6)  # loops in a game engine or a DAW
    synthesised = mido.MidiFile(file=io.BytesIO(preset_midi(piece, SOUNDS["orchestra"])))
    assert synthesised.length == pytest.approx(piece.seconds + TAIL_SECONDS, abs=0.01)  # the last notes ring out


# -- SoundFont presets --------------------------------------------------------------------
@pytest.mark.parametrize("sound", ["orchestra", "piano"])
def test_soundfont_presets_render_every_voice(soundfont, piece, sound):
    x, rate, used, warnings = synthesise(piece, SOUNDS[sound])
    assert used == sound and not warnings
    assert abs(len(x) / rate - TAIL_SECONDS - piece.seconds) / piece.seconds < 0.01
    for voice in T.VOICES:
        y, _, _, _ = synthesise(solo(piece, voice), SOUNDS[sound])
        assert rms_db(y) > -50, f"{sound} {voice} is inaudible ({rms_db(y):.1f} dB)"


def test_soundfont_render_is_mastered_like_chip(soundfont, piece):
    rendered = render(piece, sound="orchestra", formats=("wav",))
    assert rendered.sound == "orchestra" and not rendered.warnings
    x, rate = read_wav(rendered["wav"])
    assert rate == 48000
    assert np.abs(x).max() <= 1.0
    assert abs(A.gated_loudness_db(x, rate) - A.TARGET_LOUDNESS_DB) < 1.0


def test_corrupt_soundfont_falls_back_to_chip_with_a_warning(piece, tmp_path, monkeypatch, caplog):
    garbage = tmp_path / "broken.sf2"
    garbage.write_bytes(b"this is not a soundfont" * 100)
    monkeypatch.setenv(sf.SOUNDFONT_ENV, str(garbage))
    with caplog.at_level(logging.WARNING, logger="composer.render"):
        rendered = render(piece, sound="orchestra", formats=("wav", "mid"))
    assert rendered.sound == "chip" and rendered.requested_sound == "orchestra"
    assert any("chip" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert rendered.warnings and "orchestra" in rendered.warnings[0]
    x, rate = read_wav(rendered["wav"])
    assert rate == 44100 and rms_db(x) > -30
    # the MIDI still asks for the orchestra's instruments
    assert rendered["mid"] == preset_midi(piece.pad_to_bars(), SOUNDS["orchestra"], tail_seconds=None)


def test_riff_file_that_is_no_soundfont_also_falls_back(piece, tmp_path, monkeypatch, caplog):
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"RIFF\x10\x00\x00\x00sfbk" + b"\x00" * 64)  # right magic, no content
    monkeypatch.setenv(sf.SOUNDFONT_ENV, str(fake))
    with caplog.at_level(logging.WARNING):
        assert render(piece, sound="piano", formats=("wav",)).sound == "chip"
    assert caplog.records


def test_missing_renderer_falls_back_to_chip(soundfont, piece, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "midirenderer", None)  # import fails
    with caplog.at_level(logging.WARNING):
        rendered = render(piece, sound="orchestra", formats=("wav",))
    assert rendered.sound == "chip"
    assert "pip install midirenderer" in caplog.text


def test_missing_soundfont_falls_back_to_chip(piece, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(sf.SOUNDFONT_ENV, str(tmp_path / "nowhere.sf2"))
    with caplog.at_level(logging.WARNING):
        rendered = render(piece, sound="piano", formats=("wav",))
    assert rendered.sound == "chip"
    assert "does not exist" in caplog.text


# -- files, the whole set, edge cases --------------------------------------------------------
def test_default_formats_and_files_in_out_dir(piece, tmp_path, ffmpeg):
    rendered = render(piece, out_dir=tmp_path / "out")
    assert isinstance(rendered, Rendered)
    assert list(rendered.data) == ["mp3", "mid", "beats", "png"]  # the beat map beside the MIDI
    for fmt, path in rendered.paths.items():
        assert path.name == f"Demo_Overture.{rendered.filename(fmt).split('.', 1)[1]}"
        assert path.name.endswith(".beats.json" if fmt == "beats" else f".{fmt}")
        assert path.read_bytes() == rendered[fmt]
    assert {"synth", "master", "mp3", "png", "mid", "total"} <= set(rendered.timings)
    assert rendered.timings["total"] >= max(v for k, v in rendered.timings.items() if k != "total") * 0.5


def test_empty_piece_renders_silence(ffmpeg):
    rendered = render(Piece.empty(2, title=""), formats=("mp3", "wav", "mid", "png"))
    x, _ = read_wav(rendered["wav"])
    assert not x.any()
    assert rendered.basename == "piece"


def test_empty_piece_with_a_soundfont_sound(soundfont):
    rendered = render(Piece.empty(2), sound="orchestra", formats=("wav",))
    x, rate = read_wav(rendered["wav"])
    assert not x.any() and abs(len(x) / rate - 4 - TAIL_SECONDS) < 0.01


def test_importing_composer_render_is_cheap():
    code = (
        "import sys, composer.render; "
        "print(sorted(m for m in ('matplotlib', 'pydub', 'midirenderer', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- CLI ---------------------------------------------------------------------------------------
def test_cli_renders_a_midi_file(tmp_path, ffmpeg):
    midi = tmp_path / "tune.mid"
    midi.write_bytes(to_midi(demo_piece(4)))
    result = CliRunner().invoke(render_command, [str(midi), "--out", str(tmp_path / "o"), "-f", "mp3", "-f", "png"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "tune.mp3").stat().st_size > 10_000
    assert (tmp_path / "o" / "tune.png").read_bytes().startswith(b"\x89PNG")
    assert "wrote" in result.output and "tune.mp3" in result.output


def test_cli_crops_bars(tmp_path):
    midi = tmp_path / "tune.mid"
    midi.write_bytes(to_midi(demo_piece(8)))
    result = CliRunner().invoke(render_command, [str(midi), "-o", str(tmp_path), "-f", "wav", "--bars", "2"])
    assert result.exit_code == 0, result.output
    x, rate = read_wav((tmp_path / "tune.wav").read_bytes())
    assert abs(len(x) / rate - 4 - TAIL_SECONDS) < 0.01


@pytest.mark.parametrize(
    "content, message",
    [(b"not a midi file at all", "not a MIDI file"), (b"MThd\x00\x00\x00\x06\x00\x01", "could not be read")],
    ids=["garbage", "truncated"],
)
def test_cli_bad_input_is_a_clear_error(tmp_path, content, message):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(content)
    result = CliRunner().invoke(render_command, [str(bad), "-o", str(tmp_path), "-f", "wav"])
    assert result.exit_code == 1
    assert message in result.output and "hint:" in result.output


def test_cli_unknown_sound_lists_the_sounds(tmp_path):
    midi = tmp_path / "tune.mid"
    midi.write_bytes(to_midi(demo_piece(1)))
    result = CliRunner().invoke(render_command, [str(midi), "--sound", "kazoo"])
    assert result.exit_code == 2
    assert "chip" in result.output and "orchestra" in result.output and "piano" in result.output
