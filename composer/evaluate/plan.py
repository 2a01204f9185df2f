"""The plan of the evaluation: its knobs, and the pieces it asks the generator for.

``n`` pieces with fixed seeds (piece i gets ``seed + i``), round-robin over the checkpoint's
styles (every single label plus a few game-composer blends) and every form of
``composer.generate.request.FORMS``, generated in batches of the same form. Sampling settings are the
request's own defaults, so the evaluation measures what people get.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import cycle

from tqdm import tqdm

from composer.evaluate import likelihood as L
from composer.music.grid import Piece
from composer.generate.request import FORMS, GenerationRequest

__all__ = ["EvalConfig", "default_styles", "plan_requests", "generate_pieces", "style_name"]

HEADLINE_BLENDS = ("zelda-bach",)  # always in the plan when the checkpoint knows them
N_BLENDS = 4  # game-composer blends in the default plan


@dataclass
class EvalConfig:
    n: int = 64  # generated pieces
    bars: int = 16  # length of every generated piece and real excerpt (4/4 bars)
    forms: tuple[str, ...] = tuple(FORMS)  # cycled over the plan
    styles: list[str] | None = None  # None = every single label + a few blends
    steps: int = GenerationRequest.default("steps")  # Gibbs passes
    temperature: float = GenerationRequest.default("temperature")
    top_p: float = GenerationRequest.default("top_p")
    request: dict = field(default_factory=dict)  # other request fields to set (`eval run --set smoothness=0`)
    seed: int = 0  # piece i gets seed + i; masks, positions and classifiers are seeded too
    batch: int = 16  # requests per generate_many call
    mask_rates: tuple[float, ...] = L.MASK_RATES
    masked_windows: int = 256  # test windows (256 frames) scored at each mask rate
    continuation_positions: int = 1024  # test frames scored for continuation NLL
    ngram_orders: tuple[int, ...] = (2, 3, 4, 5, 6)  # chosen on the valid split
    ngram_shifts: tuple[int, ...] = tuple(range(-6, 6))  # counted in all 12 keys, as the models train transposed
    real_per_piece: int = 2  # test excerpts per real piece for the statistics
    train_excerpts: int = 400  # train excerpts (one per piece, seeded sample)
    style_windows_per_piece: int = 32  # style classifier: windows per training piece at most
    device: str = "auto"
    precision: str = "auto"  # the infiller's (choose_precision)
    baseline_lstm: str | None = None  # checkpoint of the original's approach (unidirectional LSTM)
    likelihood: bool = True
    quiet: bool = False
    command: str = ""  # the command line, for the record

    def to_dict(self) -> dict:
        return asdict(self)


def default_styles(catalog) -> list[str]:
    """bach first (a target), the headline blend, every game, every composer, a few blends."""
    singles = list(catalog.games) + list(catalog.composers)
    order = (["bach"] if "bach" in singles else []) + [s for s in singles if s != "bach"]
    blends = []
    for name in HEADLINE_BLENDS:
        try:
            style = catalog.resolve(name)
        except Exception:  # an unknown style: this checkpoint has other labels
            continue
        if style.is_blend:
            blends.append(name)
    composers = cycle(catalog.composers or [None])
    for game in catalog.games:
        composer = next(composers)
        if composer and len(blends) < N_BLENDS and f"{game}-{composer}" not in blends:
            blends.append(f"{game}-{composer}")
    return order[:1] + blends[:1] + order[1:] + blends[1:]


def plan_requests(catalog, cfg: EvalConfig):
    """The ``n`` generation requests: style i % S, form rotating so that every style meets
    every form, seed ``cfg.seed + i``."""
    styles = cfg.styles or default_styles(catalog)
    requests = []
    for i in range(cfg.n):
        style = styles[i % len(styles)]
        form = cfg.forms[(i % len(styles) + i // len(styles)) % len(cfg.forms)]
        sampling = {"steps": cfg.steps, "temperature": cfg.temperature, "top_p": cfg.top_p, **cfg.request}
        requests.append(GenerationRequest(style=style, bars=cfg.bars, form=form, seed=cfg.seed + i, **sampling))
    return requests


def generate_pieces(generator, cfg: EvalConfig) -> list[Piece]:
    """Generate the plan in batches of the same form (so each batch shares its passes)."""
    requests = plan_requests(generator.catalog, cfg)
    order = sorted(range(len(requests)), key=lambda i: (cfg.forms.index(requests[i].form), i))
    pieces: list[Piece | None] = [None] * len(requests)
    bar = tqdm(total=len(requests), desc="generate", disable=cfg.quiet, dynamic_ncols=True, leave=False)
    for lo in range(0, len(order), cfg.batch):
        chunk = order[lo : lo + cfg.batch]
        made = generator.generate_many([requests[i] for i in chunk])
        for i, piece in zip(chunk, made):
            piece.extra["form"] = requests[i].form
            pieces[i] = piece
        bar.update(len(chunk))
    bar.close()
    return pieces


def style_name(piece: Piece) -> str:
    """The style a generated piece was asked for (``zelda-bach``), else its labels joined."""
    return piece.extra.get("style") or "-".join(piece.labels)
