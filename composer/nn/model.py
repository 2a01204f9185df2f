"""The network (``GridModel``): a TimeDistributed BiLSTM that fills in hidden cells of the grid.

Per frame: embed every voice's token (a hidden cell is the extra ``MASK`` token, and its
flag is also given explicitly), add the metrical position and the style, then two
TimeDistributed dense layers, three bidirectional LSTM layers over time, and one
TimeDistributed head per voice giving logits over that voice's vocabulary.

The same config selects the architectures we compare (``ModelConfig.arch``):

* ``lstm``            unidirectional next-frame model: the original experiment's approach
* ``td_lstm``         the TimeDistributed dense layers before a unidirectional LSTM: v2's draft
* ``bilstm``          embeddings straight into the BiLSTM (no dense layers)
* ``td_bilstm``       the default described above
* ``td_bilstm_attn``  plus one self-attention block after the BiLSTM
* ``transformer``     a Transformer encoder in place of the LSTMs
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from composer.music import tokens as T

ARCHITECTURES = ("lstm", "td_lstm", "bilstm", "td_bilstm", "td_bilstm_attn", "transformer")
CAUSAL_ARCHITECTURES = ("lstm", "td_lstm")  # next-frame models: they draft left to right
MAX_FRAMES_PER_BAR = 32  # position-in-bar table size (up to 8/4)


@dataclass
class ModelConfig:
    arch: str = "td_bilstm"  # one of ARCHITECTURES
    n_games: int = 1  # size of the game label table (index n_games = "no game")
    n_composers: int = 1  # likewise for composers
    embed_dim: int = 48  # per-voice token embedding
    style_dim: int = 32  # game and composer embeddings
    hidden: int = 256  # dense width and LSTM units per direction
    lstm_layers: int = 3
    attn_heads: int = 4  # td_bilstm_attn and transformer
    transformer_layers: int = 4
    dropout: float = 0.1
    harmony: bool = False  # add what sounds: each held note's pitch, the frame's chord, the window's key profile

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)} (received {self.arch!r})")
        if self.hidden < 8 or self.lstm_layers < 1:
            raise ValueError(f"hidden must be >= 8 and lstm_layers >= 1 (received {self.hidden}, {self.lstm_layers})")

    @classmethod
    def tiny(cls, **overrides) -> ModelConfig:
        """A model small enough for unit tests."""
        return cls(**{"embed_dim": 8, "style_dim": 4, "hidden": 16, "lstm_layers": 1, "transformer_layers": 1, "attn_heads": 2, **overrides})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Refuses a key it does not know, as ``TrainConfig.from_dict`` does: a misspelt size
        would otherwise train (or load) a network other than the one asked for."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model options: {', '.join(sorted(unknown))}")
        return cls(**data)

    @property
    def causal(self) -> bool:
        return self.arch in CAUSAL_ARCHITECTURES


class GridModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        # One embedding table per voice; the last index of each is MASK.
        self.token_embed = nn.ModuleList(nn.Embedding(v + 1, c.embed_dim) for v in T.VOCAB_SIZES)
        self.position_embed = nn.Embedding(MAX_FRAMES_PER_BAR, c.style_dim)
        self.meter_embed = nn.Embedding(MAX_FRAMES_PER_BAR + 1, c.style_dim)
        self.game_embed = nn.Embedding(c.n_games + 1, c.style_dim)
        self.composer_embed = nn.Embedding(c.n_composers + 1, c.style_dim)
        frame_dim = T.N_VOICES * c.embed_dim + T.N_VOICES + 4 * c.style_dim
        if self.uses_harmony:
            # The pitch a cell sounds (an onset's, or the note a hold continues), embedded;
            # plus the pitch classes sounding in the frame and across the visible window.
            self.sounding_embed = nn.Embedding(T.PITCHED_VOCAB, c.embed_dim)
            frame_dim += 2 * 12

        if c.arch in ("td_lstm", "td_bilstm", "td_bilstm_attn", "transformer"):
            self.td = nn.Sequential(  # TimeDistributed: Linear acts on every frame alike
                nn.Linear(frame_dim, c.hidden), nn.GELU(), nn.Dropout(c.dropout),
                nn.Linear(c.hidden, c.hidden), nn.GELU(), nn.Dropout(c.dropout),
            )
            seq_in = c.hidden
        else:
            self.td = nn.Identity()
            seq_in = frame_dim

        if c.arch == "transformer":
            layer = nn.TransformerEncoderLayer(c.hidden, c.attn_heads, 4 * c.hidden, c.dropout, batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, c.transformer_layers, enable_nested_tensor=False)
            out_dim = c.hidden
        else:
            bidirectional = not c.causal
            self.lstm = nn.LSTM(seq_in, c.hidden, c.lstm_layers, batch_first=True,
                                bidirectional=bidirectional, dropout=c.dropout if c.lstm_layers > 1 else 0.0)
            out_dim = c.hidden * (2 if bidirectional else 1)
        if c.arch == "td_bilstm_attn":
            self.attn_norm = nn.LayerNorm(out_dim)
            self.attn = nn.MultiheadAttention(out_dim, c.attn_heads, dropout=c.dropout, batch_first=True)
        self.out_norm = nn.LayerNorm(out_dim)
        self.heads = nn.ModuleList(nn.Linear(out_dim, v) for v in T.VOCAB_SIZES)

    @property
    def uses_harmony(self) -> bool:
        # The window-wide key profile would show a causal model the future: bidirectional only.
        return self.config.harmony and not self.config.causal

    @staticmethod
    def mask_ids() -> torch.Tensor:
        """The MASK token index of every voice: (5,)."""
        return torch.tensor(T.VOCAB_SIZES)

    def frame_features(self, tokens, game, composer, frames_per_bar, start_frame=0):
        """(B, T, 5) tokens (MASK = hidden) -> (B, T, frame_dim)."""
        B, L, _ = tokens.shape
        hidden = tokens == self.mask_ids().to(tokens.device)  # (B, T, 5)
        voices = [emb(tokens[..., v]) for v, emb in enumerate(self.token_embed)]  # 5 x (B, T, E)
        # A corpus piece in a metre longer than the tables (a folk tune in 9/4) is read as the longest.
        frames_per_bar = frames_per_bar.clamp(1, MAX_FRAMES_PER_BAR)
        positions = (torch.arange(L, device=tokens.device) + start_frame)[None, :] % frames_per_bar[:, None]
        style = torch.cat([self.game_embed(game), self.composer_embed(composer), self.meter_embed(frames_per_bar)], -1)
        features = voices + [hidden.float(), self.position_embed(positions), style[:, None, :].expand(B, L, -1)]
        if self.uses_harmony:
            source, sounding = sounding_notes(tokens)  # (B, T, 4) each
            for v in range(T.DRUM_VOICE):
                features[v] = features[v] + self.sounding_embed(source[..., v]) * sounding[..., v, None]
            pc = F.one_hot((source - T.PITCH_OFFSET + T.PITCH_MIN) % 12, 12).float() * sounding[..., None]
            chord = pc.sum(2).clamp(max=1.0)  # (B, T, 12)
            profile = pc.sum((1, 2))
            profile = profile / profile.sum(-1, keepdim=True).clamp(min=1.0)  # (B, 12)
            features += [chord, profile[:, None, :].expand(B, L, -1)]
        return torch.cat(features, -1)

    def forward(self, tokens, game, composer, frames_per_bar):
        """Logits for every cell: a list of 5 tensors (B, T, vocab_v).

        tokens: (B, T, 5) long, hidden cells hold the voice's MASK index.
        game, composer: (B,) long label indices ("none" = n_games / n_composers).
        frames_per_bar: (B,) long.
        """
        c = self.config
        if c.causal:  # next-frame model: frame t sees frames < t only
            bos = self.mask_ids().to(tokens.device).expand(tokens.shape[0], 1, T.N_VOICES)
            tokens = torch.cat([bos, tokens[:, :-1]], 1)
        x = self.frame_features(tokens, game, composer, frames_per_bar)  # (B, T, F)
        x = self.td(x)  # (B, T, H)
        if c.arch == "transformer":
            x = self.encoder(x + sinusoid(x.shape[1], x.shape[2], x.device))  # (B, T, H)
        else:
            x, _ = self.lstm(x)  # (B, T, 2H) or (B, T, H) for lstm
        if c.arch == "td_bilstm_attn":
            h = self.attn_norm(x)
            x = x + self.attn(h, h, h, need_weights=False)[0]  # (B, T, 2H)
        x = self.out_norm(x)
        return [head(x) for head in self.heads]  # 5 x (B, T, V_v)

    @torch.no_grad()
    def step(self, inputs, game, composer, frames_per_bar, frame_index, state=None):
        """Read k more frames with a next-frame (causal) model: ``inputs`` (B, k, 5) are the
        frames before ``frame_index`` .. ``frame_index + k - 1`` (the first frame's input is
        all MASK). Returns the logits for frame ``frame_index + k - 1`` and the new state;
        frames that are already fixed are read k at a time in one call."""
        assert self.config.causal, "step() is only for the next-frame (causal) models"
        x = self.td(self.frame_features(inputs, game, composer, frames_per_bar, start_frame=frame_index))
        if x.shape[1] <= STEPWISE_FRAMES:
            for j in range(x.shape[1]):
                out, state = lstm_step(self.lstm, x[:, j], state)
        else:
            x, state = self.lstm(x, state)
            out = x[:, -1]
        out = self.out_norm(out)
        return [head(out) for head in self.heads], state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


STEPWISE_FRAMES = 8  # up to this many frames, step() runs the LSTM's equations itself (lstm_step)


def lstm_step(lstm: nn.LSTM, x: torch.Tensor, state=None):
    """One frame (B, input) through a unidirectional ``nn.LSTM`` in eval mode, by its own
    equations (gates in torch's order: input, forget, cell, output): the same numbers as
    ``lstm(x[:, None], state)``, but torch's fused kernel has a fixed cost per call that
    dwarfs one frame's arithmetic on the CPU (4.3 ms against 0.28 ms for hidden 256 x 3
    layers, one thread). Returns the top layer's output (B, H) and the state (h, c)."""
    layers, hidden = lstm.num_layers, lstm.hidden_size
    if state is None:
        zeros = x.new_zeros(layers, x.shape[0], hidden)
        state = (zeros, zeros)
    h, c = state
    hs, cs = [], []
    for layer in range(layers):
        gates = F.linear(x, getattr(lstm, f"weight_ih_l{layer}"), getattr(lstm, f"bias_ih_l{layer}")) \
            + F.linear(h[layer], getattr(lstm, f"weight_hh_l{layer}"), getattr(lstm, f"bias_hh_l{layer}"))
        i, f, g, o = gates.chunk(4, -1)
        c_new = torch.sigmoid(f) * c[layer] + torch.sigmoid(i) * torch.tanh(g)
        x = torch.sigmoid(o) * torch.tanh(c_new)
        hs.append(x)
        cs.append(c_new)
    return x, (torch.stack(hs), torch.stack(cs))


def sounding_notes(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each pitched cell, the onset token of the note sounding there (its own, or the
    one a run of holds continues) and whether a visible note sounds at all: (B, T, 4) x 2.
    A hidden cell (MASK) or a rest breaks the chain."""
    pitched = tokens[..., : T.DRUM_VOICE]
    hold = pitched == T.HOLD
    frames = torch.arange(pitched.shape[1], device=tokens.device)[None, :, None].expand_as(pitched)
    last_event = torch.where(hold, torch.zeros_like(frames), frames).cummax(1).values
    source = pitched.gather(1, last_event)
    is_note = (source >= T.PITCH_OFFSET) & (source < T.PITCHED_VOCAB)
    sounding = is_note & ((pitched == source) | hold)
    return torch.where(is_note, source, torch.full_like(source, T.PITCH_OFFSET)), sounding.float()


def sinusoid(length: int, dim: int, device) -> torch.Tensor:
    """Absolute sinusoidal positions (Vaswani et al. 2017): (T, dim)."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)[:, : dim // 2]
    return table


def cell_log_probs(logits: list[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """log p of the true token of every cell: (B, T, 5) from the network's 5 x (B, T, V)."""
    return torch.stack([torch.log_softmax(lg.float(), -1).gather(-1, targets[..., v : v + 1]).squeeze(-1)
                        for v, lg in enumerate(logits)], -1)


def cell_nll(logits: list[torch.Tensor], targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Summed negative log-likelihood (nats) per voice over the weighted cells: (5,).

    targets: (B, T, 5) true tokens; weights: (B, T, 5) float, 1 for scored cells.
    """
    logp = cell_log_probs(logits, targets)
    return torch.stack([-(logp[..., v].reshape(-1) * weights[..., v].reshape(-1)).sum() for v in range(len(logits))])


PRECISIONS = ("auto", "float32", "bfloat16")  # what a generator's bidirectional passes may run in


def choose_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The dtype the infiller's forward passes run in under autocast; None: float32.

    ``auto`` is bfloat16 on a CPU that multiplies it natively (AMX or AVX512-BF16), float32
    elsewhere (a GPU included). The BiLSTM over a 32-bar blend (2 rows x 512 frames, hidden 192 x
    3 layers, one thread) takes 29 ms in bfloat16 against 81 ms in float32 on the development and
    CI machines (with AMX). The draft's one-frame steps stay in float32: at batch 2 a step's cost
    is overhead, and bfloat16 made it slower (1.12 ms against 0.78 ms)."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}: choose one of {', '.join(PRECISIONS)}")
    if name == "float32":
        return None
    if name == "bfloat16":
        return torch.bfloat16
    probes = [getattr(torch.cpu, helper, None) for helper in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    native = device.type == "cpu" and any(probe is not None and probe() for probe in probes)
    return torch.bfloat16 if native else None


def choose_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA, then Apple's MPS, then the CPU; any other name is taken as given."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
