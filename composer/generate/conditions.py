"""Style conditioning: the label rows (experts) a request is predicted with, their weights (per frame
when a blend moves between its parents), and the product of experts that combines their predictions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from composer.music import tokens as T
from composer.generate.request import GenerationRequest, section_letters
from composer.generate.seeds import BLEND_STREAM
from composer.generate.styles import Style

DRUM_BLEND_SHARE = 0.3  # the composer's weight on drums is blend x this: games bring the groove
# The other parent's share inside a blend's section (and its lines). 0.15 until v3.4; none measured
# better on 300 pieces of each blend (seeds 3000), heard as a parent: zelda-bach / doom-mozart /
# simutrans-bach 65 / 54 / 83 % -> 79 / 57 / 85 %. A section is one parent's; the piece is both.
BLEND_HINT = 0.0
BLEND_PHRASE_BARS = 8  # a through-composed blend changes parent every phrase of this many bars
MAX_BLEND_SECTIONS = 10  # up to this many sections, every way of sharing them is weighed


@dataclass
class Condition:
    """One forward-pass row: a style label pair and its weight in the product of experts
    (a number, or one per frame when a blend moves between its parents section by section)."""

    item: int
    game: int
    composer: int
    weight_pitched: float | torch.Tensor
    weight_drums: float | torch.Tensor

    def frames(self, index) -> Condition:
        """The condition over the frames ``index`` selects (a slice or index tensor) of the piece."""
        def pick(w):
            return w[index] if isinstance(w, torch.Tensor) else w
        return Condition(self.item, self.game, self.composer, pick(self.weight_pitched), pick(self.weight_drums))


def conditions_over(conds: list[Condition], index) -> list[Condition]:
    """Every condition over the frames ``index`` selects: what a re-written window or a loop's
    seam sees of a blend's sections."""
    return [c.frames(index) for c in conds]


def style_experts(style: Style, blend: float | torch.Tensor, none_game: int, none_composer: int) -> list[tuple]:
    """The label rows a style is predicted with, (game, composer, pitched weight, drums weight):
    one row for a single label; for a pair, a game row and a composer row weighted by ``blend``
    (the composer's weight on drums by blend x DRUM_BLEND_SHARE)."""
    if not style.is_blend:
        game = style.game_index if style.game_index is not None else none_game
        composer = style.composer_index if style.composer_index is not None else none_composer
        return [(game, composer, 1.0, 1.0)]
    drum_blend = blend * DRUM_BLEND_SHARE
    return [(style.game_index, none_composer, 1.0 - blend, 1.0 - drum_blend),
            (none_game, style.composer_index, blend, drum_blend)]


def blend_over_frames(request: GenerationRequest, style: Style, fpb: int) -> float | torch.Tensor:
    """A blend's composer share, per frame: each section (a form's letter, else a phrase of
    ``BLEND_PHRASE_BARS``) belongs to the game or to the composer, about ``blend`` of the bars to
    the composer (``composer_sections``), with ``BLEND_HINT`` of the other parent mixed in (none). A
    single label, a piece too short for two sections, or a request with ``texture`` 0 keeps the
    request's ``blend`` throughout. The networks' label follows it section by section; the lines
    and the texture plan are the main parent's throughout (``lines_share``, ``texture_share``).

    Mixed note by note, a blend sounded like neither parent: v2's zelda-bach was classified
    as Dink 0 % and as Bach 14 % of the time. Section by section, each part is clearly one
    of them and the piece is both."""
    if not style.is_blend or request.primer is not None or request.texture <= 0:
        return request.blend  # (texture 0 composes as v2 did, blends included)
    letters = section_letters(request)
    if letters is None:
        phrase = BLEND_PHRASE_BARS if request.bars >= 2 * BLEND_PHRASE_BARS else BLEND_PHRASE_BARS // 2
        letters = [str(b // phrase) for b in range(request.bars)]
    if len(set(letters)) < 2:
        return request.blend
    composer = composer_sections(letters, request.blend, np.random.default_rng([int(request.seed), BLEND_STREAM]))
    share = torch.tensor([1.0 - BLEND_HINT if letter in composer else BLEND_HINT for letter in letters])
    return share.repeat_interleave(fpb)


def lines_share(blend: float | torch.Tensor) -> float:
    """The composer's share of a blend's lines (its melodic and vertical intervals, its register),
    from ``blend_over_frames``: the parent with most of the bars keeps its lines through the whole
    piece, with ``BLEND_HINT`` of the other's (on a tie, the opening section's parent); the
    sections still alternate their texture and their network's label.

    Measured on 300 pieces of each blend (selection seeds 3000-3899, a hint of 0.15), the share of
    pieces classified as one of their parents, zelda-bach / doom-mozart / simutrans-bach: each
    section's own lines 52 / 47 / 78 %, both parents' mixed half and half 52 / 46 / 78 %, the main
    parent's throughout 65 / 54 / 83 % (with no hint: each section's own 54 / 46 / 82 %, the main
    parent's 79 / 57 / 85 %): a piece is heard as one of its parents when its lines speak one language."""
    if not isinstance(blend, torch.Tensor):
        return float(blend)
    mean = float(blend.mean())
    composer = float(blend[0]) > 0.5 if abs(mean - 0.5) < 1e-6 else mean > 0.5
    return 1.0 - BLEND_HINT if composer else BLEND_HINT


def texture_share(blend: float | torch.Tensor) -> float | torch.Tensor:
    """The composer's share of a blend's texture plan, per frame (``blend_over_frames``): like its
    lines, the main parent's through the whole piece (``lines_share``), so that only the networks'
    label changes from section to section.

    Measured on 300 pieces of each blend, heard as a parent, zelda-bach / doom-mozart /
    simutrans-bach: each section's own parent's texture 80 / 63 / 87 %, the main parent's 85 / 69 / 89 %
    (selection seeds 3000). Pieces whose main parent is the composer gained most (zelda-bach 74 -> 89 %):
    their game sections, in the game's texture and the composer's lines, were heard as a third style."""
    if not isinstance(blend, torch.Tensor):
        return blend
    return torch.full_like(blend, lines_share(blend))


def composer_sections(letters: list[str], blend: float, rng: np.random.Generator) -> set[str]:
    """The sections (letters; one per bar) a blend gives to the composer: those whose share of the
    bars comes closest to ``blend``, at least one to each parent when 0 < blend < 1 (a tie, such
    as AABA's theme or bridge at 0.5, drawn at random).

    Counting sections instead of bars, every blend between 0 and 1 gave AABA one section each,
    and ``blend`` changed nothing a listener could hear in the default form."""
    distinct = list(dict.fromkeys(letters))
    n = len(distinct)
    if blend <= 0 or blend >= 1:
        return set(distinct) if blend >= 1 else set()
    if n > MAX_BLEND_SECTIONS:  # phrases of a long through-composed piece: equal lengths, so count them
        k = min(n - 1, max(1, round(blend * n)))
        return set(rng.choice(distinct, size=k, replace=False).tolist())
    bars = np.array([letters.count(letter) for letter in distinct]) / len(letters)
    subsets = (np.arange(1, 2 ** n - 1)[:, None] >> np.arange(n) & 1).astype(bool)  # each sharing, by bitmask
    gap = np.abs(subsets @ bars - blend)
    best = np.flatnonzero(gap <= gap.min() + 1e-9)
    return {letter for letter, chosen in zip(distinct, subsets[int(rng.choice(best))]) if chosen}


def conditions(item: int, style: Style, blend: float | torch.Tensor, guidance: float, none_game: int,
               none_composer: int) -> list[Condition]:
    """The forward rows of request ``item``. Product of experts: the game-conditioned and
    composer-conditioned predictions, mixed by ``blend`` (a single label is one expert with weight 1;
    per frame for a blend whose sections alternate between its parents, ``blend_over_frames``).
    ``none_game`` and ``none_composer`` are the model's "no label" indices.

    ``guidance`` g > 0 adds classifier-free guidance: (1 + g) x the styled prediction
    - g x the unlabelled one (the model learnt both: labels are dropped in training).
    Measured with v2 (96 pieces, tonality 0.5): guidance 0 -> 1 raised style-classifier
    accuracy on game styles from 44 % to 78 % at the same statistics overlap (0.775,
    0.777); 1.5 gave 82 % on another 192 pieces but less overlap (0.80 against 0.82). With v3's
    interval pulls, 1 -> 1.5 kept the overlap (0.852 / 0.856 -> 0.851 / 0.861 on the two selection
    sets), made the pieces harder to tell from real (71.4 / 69.2 -> 69.5 / 67.0 %) and the blends
    easier to hear as a parent (300 of each, zelda-bach / doom-mozart / simutrans-bach 79 / 57 / 85
    -> 81 / 63 / 84 %); 2 lost overlap (0.847 / 0.847). The draft pays little for the extra row (one
    LSTM step batches it); the infiller's passes cost about a third more."""
    experts = [Condition(item, *expert) for expert in style_experts(style, blend, none_game, none_composer)]
    if guidance <= 0:
        return experts
    scale = 1.0 + guidance
    guided = [Condition(c.item, c.game, c.composer, c.weight_pitched * scale, c.weight_drums * scale)
              for c in experts]
    return guided + [Condition(item, none_game, none_composer, -guidance, -guidance)]


def labels(conds: list[Condition], fpb: int, device: torch.device):
    """One forward row per condition: the request each row belongs to, its label tensors,
    and per voice the rows' weights in the product of experts."""
    rows = torch.tensor([c.item for c in conds])
    game = torch.tensor([c.game for c in conds], device=device)
    composer = torch.tensor([c.composer for c in conds], device=device)
    meter = torch.full((len(conds),), fpb, device=device)
    weights = []
    for v in range(T.N_VOICES):
        ws = [c.weight_drums if v == T.DRUM_VOICE else c.weight_pitched for c in conds]
        length = max((len(w) for w in ws if isinstance(w, torch.Tensor)), default=0)
        if length:  # (rows, frames): a blend that moves between its parents
            weights.append(torch.stack([w.float() if isinstance(w, torch.Tensor) else torch.full((length,), float(w))
                                        for w in ws]).to(device))
        else:
            weights.append(torch.tensor(ws, device=device))
    return rows, game, composer, meter, weights


def product_of_experts(logits: list[torch.Tensor], rows: torch.Tensor, weights: list[torch.Tensor],
                       batch: int) -> list[torch.Tensor]:
    """Each row's log-probabilities times its weight, summed per request: 5 x (batch, ..., V), on
    the CPU."""
    out = []
    for lg, w in zip(logits, weights):
        if w.dim() == 2:  # weights per frame (a blend's sections): (rows, frames, 1)
            w = w[:, : lg.shape[1], None]
        else:
            w = w.view(len(w), *([1] * (lg.dim() - 1)))
        logp = torch.log_softmax(lg.float(), -1) * w
        combined = torch.zeros((batch,) + logp.shape[1:], device=logp.device)
        combined.index_add_(0, rows.to(logp.device), logp)
        out.append(combined.cpu())
    return out
