"""Buttons under every posted piece (persistent: they keep working after a restart)."""

from __future__ import annotations

import discord

import db
from cogs.utils.errors import report_error, reply


# (emoji, label, action): a button calls the Compose cog's method ``action`` with the piece's row,
# unless HANDLERS names another cog's method for it.
PIECE_ACTIONS = (("🔁", "Reroll", "reroll"), ("🎲", "Variation", "variation"), ("⏩", "Extend", "extend"),
                 ("📦", "Stems", "stems"), ("🎚️", "Layers", "layers"), ("🎹", "Sound", "sound"),
                 ("🎼", "Score", "score"), ("▶️", "Play", "play"))
HANDLERS = {"play": ("Voice", "play_button")}  # action -> (cog, method); the rest: ("Compose", action)
ANYONE_MAY = frozenset({"play"})  # listening builds nothing: anyone in the channel may press these


class PieceView(discord.ui.View):
    """🔁 reroll · 🎲 variation · ⏩ extend · 📦 stems · 🎚️ layers · 🎹 change sound · 🎼 score ·
    ▶️ play (anyone in the channel may press it: it plays the piece in their voice channel).

    The buttons carry fixed ``custom_id``s; the piece is found from the message they sit
    under, so one registered view serves every post, old or new.
    """

    def __init__(self):
        super().__init__(timeout=None)
        for emoji, label, action in PIECE_ACTIONS:
            button = discord.ui.Button(emoji=emoji, label=label, style=discord.ButtonStyle.secondary,
                                       custom_id=f"mozart:{action}")
            button.callback = self._forward(action)
            self.add_item(button)

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
        action = (interaction.data or {}).get("custom_id", "").removeprefix("mozart:")
        if row.user_id != interaction.user.id and action not in ANYONE_MAY:
            await reply(interaction, "Only the person who asked for this piece can use its buttons. "
                                     "Try `/compose` for one of your own!")
            return False
        interaction.extras["piece_row"] = row
        return True

    async def on_error(self, interaction: discord.Interaction, error: Exception, item) -> None:
        await report_error(interaction, error)

    def _forward(self, action: str):
        cog_name, method = HANDLERS.get(action, ("Compose", action))

        async def callback(interaction: discord.Interaction) -> None:
            await getattr(interaction.client.get_cog(cog_name), method)(interaction, interaction.extras["piece_row"])
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
