"""Buttons under every posted piece (persistent: they keep working after a restart)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import discord

import db
from cogs.utils.errors import report_error, reply


@dataclass(frozen=True)
class PieceButton:
    """A button under every posted piece: pressing it calls ``cog``'s handler ``method(interaction, row)``."""

    emoji: str
    label: str
    cog: str
    method: str
    anyone_may: bool = False  # listening builds nothing: anyone in the channel may press it


# custom_id -> its button, in the order they are posted. A custom_id, once posted, stays here for
# good: the messages in people's servers keep it (a change of handler changes ``cog``/``method``, never
# the key). ``PieceView.missing_handlers`` and tests/test_views.py check that each still has a handler.
PIECE_BUTTONS: dict[str, PieceButton] = {
    "mozart:reroll": PieceButton("🔁", "Reroll", "Compose", "reroll"),
    "mozart:variation": PieceButton("🎲", "Variation", "Compose", "variation"),
    "mozart:extend": PieceButton("⏩", "Extend", "Compose", "extend"),
    "mozart:stems": PieceButton("📦", "Stems", "Compose", "stems"),
    "mozart:layers": PieceButton("🎚️", "Layers", "Compose", "layers"),
    "mozart:sound": PieceButton("🎹", "Sound", "Compose", "sound"),
    "mozart:score": PieceButton("🎼", "Score", "Compose", "score"),
    "mozart:play": PieceButton("▶️", "Play", "Voice", "play_button", anyone_may=True),
}


class PieceView(discord.ui.View):
    """🔁 reroll · 🎲 variation · ⏩ extend · 📦 stems · 🎚️ layers · 🎹 change sound · 🎼 score ·
    ▶️ play (anyone in the channel may press it: it plays the piece in their voice channel).

    The buttons carry fixed ``custom_id``s; the piece is found from the message they sit
    under, so one registered view serves every post, old or new.
    """

    def __init__(self):
        super().__init__(timeout=None)
        for custom_id, spec in PIECE_BUTTONS.items():
            button = discord.ui.Button(emoji=spec.emoji, label=spec.label, style=discord.ButtonStyle.secondary,
                                       custom_id=custom_id)
            button.callback = self._forward(custom_id)
            self.add_item(button)

    @staticmethod
    def handler(bot, custom_id: str):
        """The bound coroutine method that the button ``custom_id`` calls, or None (no such button, its cog
        not loaded, or no such method)."""
        spec = PIECE_BUTTONS.get(custom_id)
        cog = bot.get_cog(spec.cog) if spec is not None else None
        method = getattr(type(cog), spec.method, None) if cog is not None else None
        return getattr(cog, spec.method) if method is not None and inspect.iscoroutinefunction(method) else None

    @classmethod
    def missing_handlers(cls, bot) -> list[str]:
        """The buttons whose handler is missing in ``bot`` (checked at start-up: a renamed method is caught
        there, not when someone presses an old post's button)."""
        return [custom_id for custom_id in PIECE_BUTTONS if cls.handler(bot, custom_id) is None]

    async def _piece(self, interaction: discord.Interaction) -> db.PieceRow | None:
        row = await db.piece_by_message(interaction.client.db, interaction.message.id)
        if row is None:
            await reply(interaction, "I no longer have this piece in my records, so I can't build on it.")
        return row

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.client.limiter.quiet(interaction.user.id):  # told to wait, and pressing again: no answer
            return False
        row = await self._piece(interaction)
        if row is None:
            return False
        spec = PIECE_BUTTONS.get((interaction.data or {}).get("custom_id", ""))
        if row.user_id != interaction.user.id and not (spec is not None and spec.anyone_may):
            await reply(interaction, "Only the person who asked for this piece can use its buttons. "
                                     "Try `/compose` for one of your own!")
            return False
        interaction.extras["piece_row"] = row
        return True

    async def on_error(self, interaction: discord.Interaction, error: Exception, item) -> None:
        await report_error(interaction, error)

    def _forward(self, custom_id: str):
        async def callback(interaction: discord.Interaction) -> None:
            handler = self.handler(interaction.client, custom_id)
            if handler is None:
                raise RuntimeError(f"no handler for the button {custom_id}")
            await handler(interaction, interaction.extras["piece_row"])
        return callback


class SoundPicker(discord.ui.View):
    """A short-lived menu of sounds; picking one re-renders the piece."""

    def __init__(self, row: db.PieceRow, cog):
        super().__init__(timeout=120)
        from composer.render import list_sounds

        self.row, self.cog = row, cog
        current = (row.params or {}).get("sound")
        options = [discord.SelectOption(label=p.name, description=p.description[:100], default=p.name == current)
                   for p in list_sounds()]
        select = discord.ui.Select(placeholder="Pick a sound", options=options, custom_id=f"mozart:sound-pick:{row.id}")
        select.callback = self._picked
        self.add_item(select)

    async def _picked(self, interaction: discord.Interaction):
        sound = interaction.data["values"][0]
        await self.cog.resound(interaction, self.row, sound)
        self.stop()

    async def on_error(self, interaction: discord.Interaction, error: Exception, item) -> None:
        await report_error(interaction, error)
