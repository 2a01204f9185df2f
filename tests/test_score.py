"""Sheet music: MusicXML that notation programs read back as the piece's notes, an engraved first
page, and the 🎼 button, the ``score`` option and ``--score`` that deliver them."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

import db
from bot import build
from composer.music import tokens as T
from composer.errors import RenderError
from composer.music.grid import Piece
from composer.music.midi_io import import_midi, to_midi
from composer.render import render
from composer.render import score as S
from composer.generate.request import GenerationRequest
from tests.conftest import bot_config, compose_in

METRES = ("4/4", "3/4", "6/8")


@pytest.fixture(scope="module")
def pieces(generator) -> dict[str, Piece]:
    """Composed by a (tiny) model: its odd rhythms test the notation harder than a tidy tune would."""
    made = {ts: generator.generate(GenerationRequest(style="zelda-bach", bars=8, seed=3, time_signature=ts))
            for ts in METRES}
    made["loop"] = generator.generate(GenerationRequest(style="zelda-bach", bars=8, seed=4, loop=True))
    return made


def _xml_notes(xml: bytes) -> tuple[list[Counter], object]:
    """Per part, (onset in quarters, MIDI pitch) of each note as music21 reads the MusicXML back."""
    import music21

    score = music21.converter.parse(xml, format="musicxml", forceSource=True)
    parts = []
    for part in score.parts:
        flat = part.stripTies().flatten()
        parts.append(Counter((round(float(n.offset), 4), int(n.pitch.midi)) for n in flat.notes))
    return parts, score


def _midi_notes(piece: Piece) -> Counter:
    """(onset in quarters, MIDI pitch) of every pitched note in the piece's MIDI file."""
    import symusic

    midi = symusic.Score.from_midi(to_midi(piece))
    tpq = midi.ticks_per_quarter
    return Counter((round(n.time / tpq, 4), int(n.pitch)) for track in midi.tracks if not track.is_drum
                   for n in track.notes)


@pytest.mark.parametrize("name", [*METRES, "loop"])
def test_musicxml_reads_back_as_the_midis_notes(pieces, name):
    piece = pieces[name]
    parts, score = _xml_notes(S.musicxml(piece))
    assert len(parts) == len(S.sounding_voices(piece))  # one part per sounding pitched voice, no drums
    assert sum(parts, Counter()) == _midi_notes(piece)  # every note, at its onset, at its pitch
    for part, v in zip(parts, S.sounding_voices(piece)):  # ... each in its own voice's part
        onsets, _, pitches = S.note_arrays(piece, v)
        assert part == Counter(zip((onsets / T.FRAMES_PER_QUARTER).round(4).tolist(), pitches.tolist()))
    numerator, denominator = piece.time_signature
    signature = score.recurse().getElementsByClass("TimeSignature").first()
    assert (signature.numerator, signature.denominator) == (numerator, denominator)
    mark = score.recurse().getElementsByClass("MetronomeMark").first()
    assert abs(mark.getQuarterBPM() - piece.tempo) <= 1.0  # 6/8 writes a dotted quarter: the same speed
    measures = score.parts[0].getElementsByClass("Measure")
    assert len(measures) == piece.n_bars
    assert all(m.duration.quarterLength == numerator * 4 / denominator for m in measures)  # whole bars, no pickup


def test_the_key_signature_is_the_pieces_key_and_notes_are_named_in_it(pieces):
    from music21 import key

    piece = pieces["4/4"].copy(key="Eb major")
    _, score = _xml_notes(S.musicxml(piece))
    assert score.recurse().getElementsByClass("KeySignature").first().sharps == key.Key("E-").sharps == -3
    names = {p.name for p in score.pitches}
    assert not names & {"D#", "G#", "A#"}  # E-flat major has E-, A-, B-, never their sharp twins


def test_a_loop_is_written_between_repeat_signs(pieces):
    xml = S.musicxml(pieces["loop"]).decode()
    assert '<repeat direction="forward"' in xml and '<repeat direction="backward"' in xml
    assert '<repeat' not in S.musicxml(pieces["4/4"]).decode()


def test_a_long_piece_shows_lead_and_bass_a_short_one_every_voice():
    full = Piece.empty(32)
    for v, pitch in zip(range(4), (76, 69, 60, 45)):
        full.grid[:: 4, v] = T.onset(pitch)
        full.grid[1::4, v] = T.HOLD
    assert S.page_voices(full) == [0, 3]
    assert S.page_voices(full.bars(0, 4)) == [0, 1, 2, 3]
    bass_only = Piece.empty(32)
    bass_only.grid[::8, 3] = T.onset(40)
    assert S.page_voices(bass_only) == [3]
    with pytest.raises(RenderError, match="no pitched notes"):
        S.musicxml(Piece.empty(4))


def test_the_first_page_is_an_engraved_png(pieces):
    from PIL import Image

    png = S.score_png(pieces["4/4"])
    image = Image.open(io.BytesIO(png)).convert("L")
    ink = np.asarray(image) < 128
    assert image.width >= 800 and ink.mean() > 0.02  # staves, notes and clefs drawn, not a blank page
    lines = (np.asarray(image) < 200).mean(axis=1) > 0.5  # staff lines (thin, anti-aliased grey) cross the page
    assert lines.sum() >= 10  # at least two five-line staves


def test_render_and_cli_write_the_score_files(generator, tiny_checkpoint, tmp_path):
    from composer.cli import cli

    rendered = render(generator.generate(GenerationRequest(style="bach", bars=4, seed=1)), formats=("mid", "score",
                                                                                                    "musicxml"))
    assert rendered["score"].startswith(b"\x89PNG") and b"<score-partwise" in rendered["musicxml"]
    assert rendered.filename("score").endswith(".score.png") and rendered.filename("musicxml").endswith(".musicxml")
    result = CliRunner().invoke(cli, ["compose", "--style", "bach", "--bars", "4", "--seed", "1", "--midi-only",
                                      "--score", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {"bach-1.mid", "bach-1.beats.json", "bach-1.score.png", "bach-1.musicxml"}
    parts, _ = _xml_notes((tmp_path / "bach-1.musicxml").read_bytes())
    assert sum(parts, Counter()) == _midi_notes(import_midi(tmp_path / "bach-1.mid"))


async def test_score_option_and_button_post_the_sheet_music(fake, tmp_path, tiny_checkpoint):
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        _, _, message = await compose_in(fake, seed=5, score=True)
        row = await db.piece_by_message(bot.db, message.id)
        names = set(message.files)
        assert {f"mozart-{row.id}-zelda-bach.score.png", f"mozart-{row.id}-zelda-bach.musicxml"} <= names
        assert row.params["score"] is True

        _, _, plain = await compose_in(fake, seed=6)
        plain_row = await db.piece_by_message(bot.db, plain.id)
        assert not any(name.endswith((".score.png", ".musicxml")) for name in plain.files)
        click = await fake.click(plain.id, "mozart:score")
        assert (await click.wait_response(3)).deferred
        followup = await fake.wait_for(lambda: next((m for m in click.followups if m.files), None), 30, "the score")
        assert not followup.ephemeral  # for the musicians in the channel
        png, xml = followup.files[f"mozart-{plain_row.id}.score.png"], followup.files[f"mozart-{plain_row.id}.musicxml"]
        assert png.startswith(b"\x89PNG")
        parts, _ = _xml_notes(xml)
        assert sum(parts, Counter()) == _midi_notes(import_midi(plain_row.midi))
