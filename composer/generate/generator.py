"""The ``Generator``: requests in, pieces out. It prepares a request (style, seed, habits), composes
requests of one shape together, keeps the best of ``best_of``'s candidates and finishes each piece.

v2 composers carry two networks. The *draft* (a next-frame ``td_lstm``) writes the music
frame by frame, each frame seeing everything before it, as a person writes; cells that are
already fixed (a repeated theme, a kept primer) are read rather than written. For a loop
it reads the end and writes the opening again as its continuation. The *infiller* (the
``td_bilstm``) sees both sides: it re-writes the bar before a returning theme (and the
bar where a loop's new opening meets the rest) so it leads into what follows, varies
repeats, and does all the work of remixes and variations, whose free cells are scattered
through the piece. A v1 checkpoint (no draft) composes by infilling alone.

Forms make themes come back: compose section A, copy it into every A slot of the form,
compose the other sections with the A's around them, then re-sample a small share of the
repeated A cells so the repeats are varied rather than identical.

Each step is a function of its own module, given the networks and the batch's state (``Batch``,
batch.py): draft.py (the draft loop), infill.py (Gibbs, the repeats varied, a few bars re-written),
loops.py (a loop's seam), conditions.py (the style experts), steering.py (texture plans and grooves),
sampling.py (a pass's cells drawn). What is left here reads top to bottom in ``_compose_group``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from composer.music import tokens as T
from composer.errors import GenerationParameterError
from composer.nn.checkpoint import CheckpointMeta
from composer.nn.folder import ComposerFolder
from composer.nn.originality import OriginalityIndex
from composer.music.grid import Piece, clean_holds, estimate_key, frames_per_bar
from composer.nn.model import GridModel, choose_device, choose_precision
from composer.generate.batch import Batch, rhythm_constraint
from composer.generate.conditions import blend_over_frames, conditions, lines_share, texture_share
from composer.generate.draft import draft_left_to_right, is_continuation
from composer.generate.infill import infill, rewrite, vary_repeats
from composer.generate.loops import close_loop_by_draft, close_loop_by_infill
from composer.generate.request import GenerationRequest, new_seed, section_letters, section_lengths
from composer.generate.seeds import BEST_OF_STREAM, HABITS_STREAM, RETRY_STREAM, derived_seed
from composer.generate.sampling import move_to_key
from composer.generate.steering import regroove_drums, steering_for
from composer.generate.styles import Style, StyleCatalog
from composer.nn.intervals import IntervalBank, Lines
from composer.nn.texture import TextureBank

if TYPE_CHECKING:
    from composer.judge.critic import Critic
    from composer.judge.reward import RewardModel

# Silence feeds on itself in a left-to-right draft: a piece that opens with rests can stay
# silent (1 of 360 pieces in the feedback loop, style dink-folk, had no pitched note at all).
# A piece with fewer pitched notes per bar than this is composed again from seeds drawn from
# its own, so it still replays from its stored seed.
SILENT_NOTES_PER_BAR = 0.5
SILENCE_RETRIES = 3
# With a draft, the infiller re-writes this many bars before each returning theme, so the
# drafted section (which could not see the theme coming) leads into it.
MEND_BARS = 1


@dataclass(frozen=True)
class Prepared:
    """A validated request with its seed chosen and its style resolved."""

    request: GenerationRequest
    style: Style


class Generator:
    """The model loaded once, ready to compose (what the CLI and the bot hold)."""

    def __init__(self, model: GridModel, meta: CheckpointMeta, device: str | torch.device = "cpu",
                 originality: OriginalityIndex | None = None, draft: GridModel | None = None,
                 reward: RewardModel | None = None, textures: TextureBank | None = None, critic: Critic | None = None,
                 intervals: IntervalBank | None = None, precision: torch.dtype | None = None):
        self.model = model.eval()  # the infiller (a bidirectional network, or a v1 causal baseline)
        self.draft = draft.eval() if draft is not None else None  # the next-frame network, when v2
        self.originality = originality  # the training corpus index, when the checkpoint has one
        self.reward = reward  # P(👍) of a piece (judge/reward.py), when the checkpoint has one: best_of
        self.textures = textures  # the training pieces' bar textures (texture.py), when the checkpoint has them
        self.critic = critic  # log-odds that a piece is real music (judge/critic.py), when trained: best_of
        self.intervals = intervals  # the training pieces' melodic intervals (intervals.py), when the checkpoint has them
        self.meta = meta
        self.device = torch.device(device)
        self.precision = precision  # the infiller's forward passes' dtype under autocast (None: float32)
        self.catalog = StyleCatalog.from_meta(meta)
        self.none_game = meta.model.n_games
        self.none_composer = meta.model.n_composers
        self.folder: Path | None = None  # the model folder it was loaded from (``load``): a child process loads it too

    @classmethod
    def load(cls, path=None, device: str = "auto", precision: str = "auto") -> Generator:
        """The composer in model folder ``path`` (default: the shipped one) on ``device``, its
        infiller running in ``precision`` (``choose_precision``)."""
        dev = choose_device(device)
        folder = ComposerFolder.at(path)
        model, meta, draft, _ = folder.networks(dev)
        originality = OriginalityIndex.load(folder.originality) if folder.originality.exists() else None
        reward = None
        if folder.reward.exists():
            from composer.judge.reward import RewardModel

            reward = RewardModel.load(folder.reward)
        textures = TextureBank.load(folder.textures) if folder.textures.exists() else None
        critic = None
        if folder.critic.exists():
            from composer.judge.critic import Critic

            critic = Critic.load(folder.path)
        intervals = IntervalBank.load(folder.intervals) if folder.intervals.exists() else None
        generator = cls(model, meta, dev, originality, draft, reward, textures, critic, intervals,
                        choose_precision(precision, dev))
        generator.folder = folder.path.resolve()
        return generator

    def originality_of(self, piece: Piece) -> tuple[float, str] | None:
        """Longest span (bars) shared with a training piece, and that piece's id."""
        if self.originality is None:
            return None
        match = self.originality.longest_match(piece)
        return match.bars, match.source

    @property
    def version(self) -> str:
        return self.meta.version

    # -- public API ----------------------------------------------------------------------
    def prepare(self, request: GenerationRequest | Prepared) -> Prepared:
        """Validate, resolve the style and choose the seed, once: what the bot checks before
        it answers, so a bad request is refused at once rather than after queueing."""
        if isinstance(request, Prepared):
            return request
        style = self.catalog.resolve(request.style)
        seed = request.seed if request.seed is not None else new_seed()
        # A style brings its habits: what the request leaves open is drawn from the seed.
        habits = self.catalog.habits(style, request.blend)
        rng = np.random.default_rng([seed, HABITS_STREAM])
        metre = request.time_signature or habits.draw_metre(rng)
        tempo = request.tempo or habits.draw_tempo(rng)
        # A primer brings its own key (the notes kept from it are in it): none is drawn for it.
        key = request.key or (habits.draw_key(rng) if request.primer is None else None)
        request = request.replace(style=style.name, seed=seed, time_signature=metre, tempo=tempo, key=key)
        request.validate()
        if request.best_of > 1 and self.reward is None and self.critic is None:
            raise GenerationParameterError(
                f"best_of needs a judge to choose with, and model {self.version} has none. Train the realism critic "
                "(python -m composer critic train --into <this model's folder>) or a reward model from exported "
                "ratings (python -m composer ratings reward --ratings ratings.jsonl --out reward.json --into <this "
                "model's folder>); or compose with best_of 1.")
        return Prepared(request, style)

    def generate(self, request: GenerationRequest | Prepared,
                 progress: Callable[[float], None] | None = None) -> Piece:
        return self.generate_many([request], progress)[0]

    @torch.no_grad()
    def generate_many(self, requests: list[GenerationRequest | Prepared],
                      progress: Callable[[float], None] | None = None) -> list[Piece]:
        """Compose several pieces; requests of the same shape share forward passes.

        A request with ``best_of`` N > 1 composes N candidates in one batch (the request's
        seed, then N - 1 seeds drawn from it: ``candidate_seeds``), finishes each as the
        request's piece and returns the one the reward model rates likeliest to get a 👍;
        its seed stays the request's, so composing the request again replays it. Measured on
        the 2-core machine, one thread, 32 bars AABA: best_of 4 takes 2.6x the time of best_of 1
        with the shipped v2 (1.05 s -> 2.75 s; four separate calls would take 4x); 3.7x with the
        tiny test model, whose forward passes are too cheap for sharing them to matter."""
        prepared = [self.prepare(r) for r in requests]
        # Every piece to compose: (the request it answers, the prepared candidate).
        jobs: list[tuple[int, Prepared]] = []
        for i, p in enumerate(prepared):
            for seed in candidate_seeds(p.request.seed, p.request.best_of):
                jobs.append((i, p if seed == p.request.seed else Prepared(p.request.replace(seed=seed), p.style)))
        groups: dict[tuple, list[int]] = {}
        for j, (i, p) in enumerate(jobs):
            r = p.request
            # best_of's candidates are a batch of their own: the same request always gets the same batch.
            alone = (i,) if r.best_of > 1 else ()
            groups.setdefault((r.bars, r.meter, r.form, r.steps, r.loop) + alone, []).append(j)
        candidates: list[Piece | None] = [None] * len(jobs)
        done = 0
        for indices in groups.values():
            def sub_progress(f, n=len(indices), base=done):
                if progress:
                    progress((base + f * n) / len(jobs))
            group = [jobs[j][1] for j in indices]
            grids = self._compose_group([p.request for p in group], [p.style for p in group], sub_progress)
            for j, grid in zip(indices, grids):
                candidates[j] = self._finish(prepared[jobs[j][0]], grid)  # as the request's own piece
            done += len(indices)
        out: list[Piece] = []
        for i, p in enumerate(prepared):
            mine = [(jobs[j][1].request.seed, candidates[j]) for j in range(len(jobs)) if jobs[j][0] == i]
            out.append(self._unless_silent(p, mine[0][1] if len(mine) == 1 else self._choose(mine, p)))
        return out

    @torch.no_grad()
    def infill(self, requests: list[GenerationRequest | Prepared], grids: list[np.ndarray], free: list[np.ndarray],
               allowed: list[np.ndarray | None], steps: int) -> list[np.ndarray]:
        """Re-compose the ``free`` cells ((frames, 5) bool) of each grid with the infiller, both
        sides in view, in ``steps`` Gibbs passes shared by the batch; a cell draws only from
        the tokens ``allowed`` marks ((frames, 5, PITCHED_VOCAB) bool, the drum voice in its
        first DRUM_VOCAB entries; None: any). Each request gives its grid's style, sampling
        settings and seed; its bars must be the grid's. What a piece's intensity layers and
        stingers are composed with (layers.py, stingers.py); grids of one length."""
        prepared = [self.prepare(r) for r in requests]
        reqs = [p.request for p in prepared]
        fpb = frames_per_bar(reqs[0].meter)
        x = torch.from_numpy(np.stack(grids).astype(np.int64))
        hide = torch.from_numpy(np.stack(free))
        x = torch.where(hide, GridModel.mask_ids(), x)
        constraint = None
        if any(a is not None for a in allowed):
            anything = np.ones((x.shape[1], T.N_VOICES, T.PITCHED_VOCAB), bool)
            constraint = torch.from_numpy(np.stack([anything if a is None else a for a in allowed]))
        batch = replace(self._batch(reqs, [p.style for p in prepared], fpb, steer=False), steps=steps,
                        constraint=constraint)
        x = infill(self.model, x, hide, batch, lambda f: None)
        return [clean_holds(g) for g in x.numpy().astype(np.uint8)]

    def _unless_silent(self, prepared: Prepared, piece: Piece) -> Piece:
        """``piece``, or, when it is near-silent, the first of up to SILENCE_RETRIES new
        attempts that is not (the one with the most notes if none), finished as the request's piece."""
        attempts = [piece]
        for seed in retry_seeds(prepared.request.seed):
            if notes_per_bar(attempts[-1]) >= SILENT_NOTES_PER_BAR:
                return attempts[-1]
            retry = prepared.request.replace(seed=seed, best_of=1)
            grid = self._compose_group([retry], [prepared.style], lambda f: None)[0]
            attempts.append(self._finish(prepared, grid))
        return max(reversed(attempts), key=notes_per_bar)  # the last attempt wins a tie

    def _choose(self, candidates: list[tuple[int, Piece]], prepared: Prepared) -> Piece:
        """The candidate the judges rate best (the first on a tie), recording the contest. A
        judge's score is log-odds: the reward model's of a 👍, the critic's of real music; with
        both, their sum."""
        pieces = [piece for _, piece in candidates]
        scores = np.zeros(len(pieces))
        record: dict = {"candidates": len(candidates), "seeds": [int(seed) for seed, _ in candidates]}
        if self.reward is not None:
            liked = np.array([self.reward.log_odds(piece, prepared.style.name) for piece in pieces])
            scores += liked
            record["scores"] = [round(float(1 / (1 + np.exp(-z))), 6) for z in liked]  # P(👍) by the reward model
            record["reward_model"] = self.reward.fingerprint
        if self.critic is not None:
            real = self.critic.scores([piece.grid for piece in pieces])
            scores += real
            record["realism"] = [round(float(r), 4) for r in real]  # log-odds of real music by the critic
            record["critic"] = self.critic.fingerprint
        best = int(np.argmax(scores))
        piece = pieces[best]
        piece.extra["best_of"] = {**record, "chosen": best}
        return piece

    # -- composition, top to bottom ------------------------------------------------------
    def _compose_group(self, reqs, styles, progress) -> np.ndarray:
        """Compose requests of one shape (bars, metre, form, steps, loop) together: the cells to
        write; section A; the form laid out and the rest written; each theme's arrival mended;
        the repeats varied; the loop closed."""
        r0 = reqs[0]
        fpb = frames_per_bar(r0.meter)
        x, free = self._start(reqs, r0.bars * fpb)
        # A draft needs every free cell after every fixed one (a new piece, an extension);
        # scattered free cells (remix, variation) are the infiller's work.
        drafting = self.draft is not None and all(is_continuation(f) for f in free)
        batch = self._batch(reqs, styles, fpb, steer=drafting)
        writable = free.clone()  # what the request lets us write, before a form fixes its A sections

        def write(x, free, progress):
            if drafting:
                return draft_left_to_right(self.draft, x, free, batch, progress, batch.steer)
            return regroove_drums(infill(self.model, x, free, batch, progress), free, reqs, fpb)

        def close_loop(x, allowed):
            """A loop's seam: drafted (the opening re-written after the end), or infilled."""
            if drafting:
                return close_loop_by_draft(self.draft, self.model, x, allowed, batch)
            return close_loop_by_infill(self.model, x, allowed, batch)

        sections = r0.sections
        if not sections:
            x = write(x, free, progress)
            if r0.loop:
                x = close_loop(x, free)
            return x.numpy().astype(np.uint8)

        # 1) section A alone; 2) lay out the form, compose the rest; 3) vary the repeats.
        lengths = section_lengths(r0.bars, sections)
        a_frames = lengths[0] * fpb
        a = write(x[:, :a_frames].clone(), free[:, :a_frames].clone(), lambda f: progress(0.3 * f))
        a = torch.from_numpy(np.stack([clean_holds(g) for g in a.numpy()]).astype(np.int64))
        starts = np.cumsum([0] + lengths[:-1]) * fpb
        repeat = torch.zeros_like(free)
        for label, start, n in zip(sections, starts, lengths):
            if label == "A":
                x[:, start : start + a_frames] = a
                free[:, start : start + a_frames] = False
                if start > 0:
                    repeat[:, start : start + a_frames] = True
        x = write(x, free, lambda f: progress(0.3 + 0.6 * f))
        if drafting:  # the draft could not see the theme coming back: lead each section into it
            before_theme = torch.zeros_like(free)
            for i, (label, start) in enumerate(zip(sections, starts)):
                if label == "A" and i > 0 and sections[i - 1] != "A":
                    before_theme[:, max(0, start - MEND_BARS * fpb) : start] = True
            x = rewrite(self.model, x, before_theme & free, batch)
        x = vary_repeats(self.model, x, repeat, batch)
        if r0.loop:
            x = close_loop(x, writable if drafting else free | repeat)
        progress(1.0)
        return x.numpy().astype(np.uint8)

    def _start(self, reqs, frames) -> tuple[torch.Tensor, torch.Tensor]:
        """The grids to compose, (B, frames, 5), every cell hidden but those a request keeps (a
        primer's, for a remix, a variation or an extension), and which cells are free to write."""
        x = torch.full((len(reqs), frames, T.N_VOICES), 0, dtype=torch.long)
        x[:] = GridModel.mask_ids()
        free = torch.ones((len(reqs), frames, T.N_VOICES), dtype=torch.bool)
        for b, r in enumerate(reqs):
            keep = r.keep_mask(frames, np.random.default_rng(int(r.seed)))
            if keep is not None:
                n = min(frames, r.primer.n_frames)
                x[b, :n] = torch.from_numpy(r.primer.grid[:n].astype(np.int64))
                free[b] = ~torch.from_numpy(keep)
                # Kept cells show their values; the rest start hidden.
                x[b][free[b]] = GridModel.mask_ids().expand(frames, -1)[free[b]]
        return x, free

    def _batch(self, reqs, styles, fpb: int, steer: bool) -> Batch:
        """The batch's random streams, style experts, rhythm constraint, melodic intervals and
        (``steer``: for a draft) texture plans and grooves."""
        gens = [torch.Generator().manual_seed(int(r.seed)) for r in reqs]
        blends = [blend_over_frames(r, s, fpb) for r, s in zip(reqs, styles)]
        conds = [c for b, (r, s) in enumerate(zip(reqs, styles))
                 for c in conditions(b, s, blends[b], r.guidance, self.none_game, self.none_composer)]
        constraint = rhythm_constraint(reqs, reqs[0].bars * fpb)
        shares = [texture_share(b) for b in blends]  # a blend's texture plan: its main parent's throughout
        steering = steering_for(reqs, styles, shares, fpb, self.textures) if steer else None
        return Batch(reqs, conds, fpb, reqs[0].steps, gens, self.device, constraint, steering,
                     self._lines(styles, blends), self.precision)

    def _lines(self, styles: list[Style], blends: list) -> list[Lines] | None:
        """Each request's style's intervals and register (a blend's: its main parent's, ``lines_share``),
        when the checkpoint has them."""
        if self.intervals is None:
            return None
        return [self.intervals.lines(s.game, s.composer, lines_share(blend)) for s, blend in zip(styles, blends)]

    # -- the finished piece --------------------------------------------------------------
    def _finish(self, prepared: Prepared, grid: np.ndarray) -> Piece:
        request, style = prepared.request, prepared.style
        grid = clean_holds(grid)
        sections = section_letters(request)
        piece = Piece(
            grid=grid, time_signature=request.meter, tempo=round(float(request.tempo), 1),
            title=f"{style.name} #{request.seed}", game=style.game, composer=style.composer,
            sections=sections, source="generated",
            extra={"seed": int(request.seed), "style": style.name, "model_version": self.version,
                   "params": request.params(), "loop": request.loop},
        )
        if request.key and request.tonality > 0 and request.primer is None:
            # Composed under the key's pull, it is in that key. Moved to where estimate_key put its
            # tonic, it was not: the estimate hears the dominant or the subdominant in about half the
            # pieces, and moving those by a fourth took 16 Mozart pieces' notes in the stated key's
            # scale from a median 88 % to 83 %.
            piece.key = request.key
        elif request.key:
            piece = move_to_key(piece, request.key)
        else:
            piece.key = estimate_key(piece)
        return piece


def candidate_seeds(seed: int, best_of: int = 1) -> list[int]:
    """The sampling seeds of a request's ``best_of`` candidates: its own seed first (so
    best_of 1 is the plain piece and a larger best_of only adds rivals), then seeds drawn
    from it, the k-th always the same."""
    return [int(seed)] + [derived_seed(seed, BEST_OF_STREAM, k) for k in range(1, best_of)]


def retry_seeds(seed: int) -> list[int]:
    """The seeds of a near-silent piece's new attempts, drawn from its own."""
    return [derived_seed(seed, RETRY_STREAM, k) for k in range(SILENCE_RETRIES)]


def notes_per_bar(piece: Piece) -> float:
    """Pitched notes (drums aside) per bar."""
    return float((piece.grid[:, : T.DRUM_VOICE] >= T.PITCH_OFFSET).sum()) / max(1, piece.n_bars)


def compose_on_one_cpu_thread(device: str | torch.device) -> None:
    """On the CPU, compose with one torch thread (the CLI, the bench and every bot worker).

    Measured on the 2-core machine with v2, 32 bars: two threads take 0.80 s idle but
    7.1 s while two other processes keep both cores busy (x8.9: each thread waits for the
    other); one thread takes 1.29 s idle and 2.13 s busy (x1.65). From a worker thread two
    threads are slower even when idle (the oneDNN LSTM runs ~7x slower there)."""
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)
