"""Try Mozart without Discord: ``python -m playground`` (or ``mozart playground``).

It starts the fake Discord the tests use (``fakediscord``), connects the real bot to it exactly as
in production (``bot.build``), and serves a web page on 127.0.0.1 that looks and behaves like a
Discord channel. The bot cannot tell the difference; no token, no network.
"""
