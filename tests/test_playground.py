"""The playground: the real bot behind a Discord-like page, driven through the page's own API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import aiohttp
import pytest
from sqlalchemy import select

import db
from bot import BotConfig
from composer.generate.request import FORMS, GenerationRequest
from composer.music.midi_io import to_midi
from playground.session import Playground
from playground.web import listen, serve


@contextlib.asynccontextmanager
async def open_playground(tmp_path, tiny_checkpoint):
    """The playground as `python -m playground` runs it, on a free port; yields (playground, url, http)."""
    config = BotConfig(token="playground", database_url=f"sqlite+aiosqlite:///{tmp_path / 'playground.db'}",
                       checkpoint=str(tiny_checkpoint), device="cpu")
    async with Playground.running(config) as playground:
        runner, url = await serve(playground, listen(0))
        try:
            async with aiohttp.ClientSession(base_url=url) as http:
                yield playground, url, http
        finally:
            await runner.cleanup()


async def _until(http, predicate, timeout=60.0, what="the page to show it"):
    """Long-poll the page's state, as the page does, until ``predicate(state)`` is truthy."""
    version = ""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        async with http.get("/api/state", params={"since": version}) as response:
            state = await response.json()
        found = predicate(state)
        if found:
            return found
        version = state["version"]
    raise AssertionError(f"timed out waiting for {what}")


def _piece(state, command="/compose"):
    """The finished piece answering ``command``: audio posted and rating prompts added."""
    for message in state["messages"]:
        names = [a["filename"] for a in message["attachments"]]
        if message.get("command") == command and any(n.endswith(".mp3") for n in names) \
                and {r["emoji"] for r in message["reactions"]} >= {"👍", "👎"}:
            return message
    return None


async def _rating(playground, message_id):
    async with playground.bot.db() as session:
        row = await db.piece_by_message(playground.bot.db, int(message_id))
        value = (await session.execute(select(db.Rating.value).where(
            db.Rating.piece_id == row.id, db.Rating.user_id == playground.fake.user_id))).scalar_one_or_none()
    return value


async def test_compose_typed_in_the_page_is_posted_and_rated(tmp_path, tiny_checkpoint):
    async with open_playground(tmp_path, tiny_checkpoint) as (playground, url, http):
        async with http.get("/") as page:
            assert page.status == 200 and "Message #" in await page.text()
        async with http.post("/api/command", json={"text": "/compose style:zelda-bach bars:4 seed:3"}) as response:
            assert response.status == 200, await response.text()
        # "thinking…" first, then the finished piece with its files, buttons and 👍/👎
        await _until(http, lambda s: any(m["loading"] or m["content"].startswith("⏳") for m in s["messages"]),
                     what="the thinking message")
        message = await _until(http, _piece, what="the posted piece")
        embed = message["embeds"][0]
        assert "zelda-bach" in embed["title"] and any(f["value"] == "3" for f in embed["fields"])
        files = {a["filename"].rsplit(".", 1)[1]: a["url"] for a in message["attachments"]}
        assert set(files) == {"mp3", "mid", "json", "png"}
        async with http.get(files["mp3"]) as audio:  # what the page's audio player loads
            assert (await audio.read()).startswith(b"ID3")
        labels = [c.get("label") for row in message["components"] for c in row["components"]]
        assert {"Reroll", "Variation", "Extend", "Sound"} <= set(labels)

        # 👍 in the page is a rating in the database; a second click takes it back, as in Discord
        async with http.post("/api/react", json={"message_id": message["id"], "emoji": "👍"}) as response:
            assert response.status == 200
        liked = await _until(http, lambda s: next((r for m in s["messages"] if m["id"] == message["id"]
                                                   for r in m["reactions"] if r["emoji"] == "👍" and r["me"]), None))
        assert liked["count"] == 2  # the bot's prompt and the person's
        await _wait(lambda: _rating(playground, message["id"]), 1)
        async with http.post("/api/react", json={"message_id": message["id"], "emoji": "👍"}) as response:
            assert response.status == 200
        await _wait(lambda: _rating(playground, message["id"]), None)


async def _wait(read, expected, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while (value := await read()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"got {value}, expected {expected}"
        await asyncio.sleep(0.05)


async def test_buttons_menus_and_the_other_commands_work_from_the_page(tmp_path, tiny_checkpoint):
    async with open_playground(tmp_path, tiny_checkpoint) as (playground, url, http):
        await http.post("/api/command", json={"text": "/compose style:doom bars:4 seed:1"})
        first = await _until(http, _piece)
        async with http.post("/api/click", json={"message_id": first["id"], "custom_id": "mozart:variation"}) as r:
            assert r.status == 200
        variation = await _until(http, lambda s: next((m for m in s["messages"] if m["id"] != first["id"]
                                                       and "variation" in str(m["embeds"]) and m["attachments"]), None))
        assert variation["embeds"][0]["title"].startswith("🎵 doom")
        # 🎹 Sound answers privately with a menu; choosing in it re-renders the piece
        await http.post("/api/click", json={"message_id": first["id"], "custom_id": "mozart:sound"})
        menu = await _until(http, lambda s: next((m for m in s["messages"] if m["ephemeral"] and m["components"]), None))
        select_spec = menu["components"][0]["components"][0]
        other = next(o["value"] for o in select_spec["options"] if o["value"] != "chip")
        async with http.post("/api/select", json={"message_id": menu["id"], "custom_id": select_spec["custom_id"],
                                                  "values": [other]}) as r:
            assert r.status == 200
        def in_sound(state):
            return any(field["name"] == "Sound" and field["value"] == other
                       for m in state["messages"] for embed in m["embeds"] for field in embed.get("fields", []))

        await _until(http, in_sound, what=f"the piece in the {other} sound")

        for text, expected in (("/styles", "Styles"), ("/help", "/compose"), ("/piece id:1", "doom")):
            before = len((await (await http.get("/api/state")).json())["messages"])
            async with http.post("/api/command", json={"text": text}) as r:
                assert r.status == 200, await r.text()
            answer = await _until(http, lambda s: len(s["messages"]) > before and not s["messages"][-1]["loading"]
                                  and not s["messages"][-1]["content"].startswith("⏳")  # progress, not yet posted
                                  and s["messages"][-1], what=f"the answer to {text}")
            assert answer["command"] == text.split()[0]
            assert expected in json.dumps(answer["embeds"], ensure_ascii=False) + answer["content"]


async def test_remix_takes_a_file_from_the_page(tmp_path, tiny_checkpoint):
    from composer.generate.generator import Generator

    tune = Generator.load(tiny_checkpoint).generate(GenerationRequest(style="doom", bars=4, seed=1, steps=4))
    async with open_playground(tmp_path, tiny_checkpoint) as (playground, url, http):
        async with http.post("/api/command", json={"text": "/remix style:bach"}) as response:
            answer = await response.json()
        assert response.status == 400 and "midi" in answer["error"] and "+ button" in answer["error"]
        form = aiohttp.FormData()
        form.add_field("text", "/remix style:bach keep:melody")
        form.add_field("file", to_midi(tune), filename="tune.mid", content_type="audio/midi")
        async with http.post("/api/command", data=form) as response:
            assert response.status == 200, await response.text()
        message = await _until(http, lambda s: _piece(s, "/remix"), what="the remix")
        assert "remix" in message["embeds"][0]["description"]
        async with playground.bot.db() as session:
            sources = (await session.execute(select(db.RemixSource))).scalars().all()
        assert [s.filename for s in sources] == ["tune.mid"]


@pytest.mark.parametrize("text, complaint", [
    ("/compose", "Missing required option: style"),
    ("/compose style:zelda-bach bars:1000", "bars: the value must be between"),
    ("/compose style:zelda-bach bars:many", "not a whole number"),
    ("/compose style:zelda-bach colour:blue", "has no option 'colour'"),
    ("/compose style:zelda-bach form:sonata", "not one of the choices"),
    ("/dance", "There is no /dance command"),
    ("/model", "needs one of"),
])
async def test_a_command_discord_would_refuse_is_refused_in_the_page(tmp_path, tiny_checkpoint, text, complaint):
    async with open_playground(tmp_path, tiny_checkpoint) as (playground, url, http):
        async with http.post("/api/command", json={"text": text}) as response:
            answer = await response.json()
        assert response.status == 400 and not answer["ok"] and complaint in answer["error"]
        assert not playground.fake.interactions  # the bot never saw it


async def test_the_popup_offers_commands_options_choices_and_the_bots_styles(tmp_path, tiny_checkpoint):
    async def popup(http, text):
        async with http.post("/api/suggest", json={"text": text}) as response:
            return await response.json()

    async with open_playground(tmp_path, tiny_checkpoint) as (playground, url, http):
        commands = {s["label"] for s in await popup(http, "/")}
        assert {"/compose", "/remix", "/styles", "/help", "/piece", "/model"} <= commands
        options = await popup(http, "/compose ")
        assert options[0]["label"] == "style" and options[0]["text"] == "/compose style:"
        styles = await popup(http, "/compose style:zelda-b")  # answered by the bot's own autocomplete
        assert "zelda-bach" in [s["label"] for s in styles]
        assert styles[0]["text"].startswith("/compose style:zelda-b") and styles[0]["text"].endswith(" ")
        forms = await popup(http, "/compose style:zelda-bach form:")  # the declared forms, each explained
        assert [s["text"] for s in forms] == [f"/compose style:zelda-bach form:{name} " for name in FORMS]
        assert all(FORMS[name][1] in s["label"] for name, s in zip(FORMS, forms))


@pytest.mark.slow
def test_python_m_playground_serves_the_page_and_stops_on_ctrl_c(tmp_path, tiny_checkpoint):
    """The newcomer's command: the page answers, the busy port is explained, Ctrl-C stops it cleanly."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time
    import urllib.request

    from playground.web import listen

    busy = listen(0)
    port = busy.getsockname()[1]
    # this checkout's playground, even where the environment's editable install is another checkout (cwd is tmp_path)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    args = [sys.executable, "-m", "playground", "--no-open", "--checkpoint", str(tiny_checkpoint),
            "--database", f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"]
    refused = subprocess.run([*args, "--port", str(port)], capture_output=True, text=True, timeout=60, env=env)
    busy.close()
    assert refused.returncode != 0 and "already running?" in refused.stderr and "--port 0" in refused.stderr

    # As a terminal starts it: with Ctrl-C's default action. A test run in the background (`pytest &` in a script)
    # has SIGINT ignored, and a child would inherit that, so Ctrl-C would never reach the playground.
    process = subprocess.Popen([*args, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, cwd=tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # a full pipe never blocks it
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not (url := next((line.split(": ", 1)[1].strip() for line in list(lines)
                                if line.startswith("Mozart playground: ")), None)):
            assert process.poll() is None and time.monotonic() < deadline, "the playground did not print its address"
            time.sleep(0.05)
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/state", timeout=10) as response:
            state = json.loads(response.read())
        assert {"compose", "remix", "styles", "help", "piece"} <= {c["name"] for c in state["commands"]}
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=30) == 0
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGUSR1)  # the playground prints every thread's stack: where it hangs
            time.sleep(2)
            pytest.fail("the playground did not stop within 30 s of Ctrl-C:\n" + "".join(lines[-80:]))
        reader.join(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert (tmp_path / "p.db").exists()
    # it starts and stops without a warning (none about voice, which Mozart does not offer)
    assert [line for line in lines if "WARNING" in line or "Traceback" in line] == []


async def test_a_command_the_bot_answers_too_late_is_shown_as_discord_shows_it(tmp_path, tiny_checkpoint):
    async with open_playground(tmp_path, tiny_checkpoint) as (playground, url, http):
        playground.fake.response_deadline = 0.0  # every answer now comes after Discord's deadline
        async with http.post("/api/command", json={"text": "/styles"}) as response:
            assert response.status == 200
        state = await _until(http, lambda s: s["unanswered"] and s, timeout=10, what="the unanswered notice")
        assert [u["command"] for u in state["unanswered"]] == ["/styles"]
        assert not [m for m in state["messages"] if m.get("command") == "/styles"]


async def test_an_idle_playground_logs_no_warning_across_heartbeats(tmp_path, tiny_checkpoint, caplog, monkeypatch):
    """Left idle, the playground heartbeats quietly: the fake ACKs a heartbeat after a round trip, as
    Discord does, so discord.py times each ACK from its own heartbeat (an ACK read before discord.py
    noted the send was timed from the heartbeat before: "Can't keep up, ... N s behind" past 10 s),
    and nothing warns about voice: PyNaCl and davey, what it needs, are installed with Mozart."""
    import threading
    import time

    import discord.gateway

    latencies = []
    real_ack = discord.gateway.KeepAliveHandler.ack

    def ack(handler):
        real_ack(handler)
        latencies.append(handler.latency)

    real_submit = asyncio.run_coroutine_threadsafe
    lag = 0.05  # a busy machine: discord.py's keep-alive thread wakes this late after its heartbeat is sent

    def submit(coro, loop):
        future = real_submit(coro, loop)
        if threading.current_thread().name.startswith("keep-alive-handler"):
            result = future.result
            future.result = lambda timeout=None: (result(timeout), time.sleep(lag))[0]
        return future

    monkeypatch.setattr(discord.gateway.KeepAliveHandler, "ack", ack)
    monkeypatch.setattr(discord.gateway.asyncio, "run_coroutine_threadsafe", submit)
    from discord import voice_client

    assert voice_client.has_nacl and voice_client.has_dave  # so discord.py has no voice warning to give
    interval = 0.6
    caplog.set_level(logging.WARNING)
    config = BotConfig(token="playground", database_url=f"sqlite+aiosqlite:///{tmp_path / 'playground.db'}",
                       checkpoint=str(tiny_checkpoint), device="cpu")
    async with Playground.running(config, heartbeat_interval_ms=int(interval * 1000)) as playground:
        deadline = asyncio.get_running_loop().time() + 30
        while len(latencies) < 4:  # four heartbeats acknowledged: over three intervals idle
            assert asyncio.get_running_loop().time() < deadline, f"only {len(latencies)} heartbeats in 30 s"
            await asyncio.sleep(interval / 4)
    assert max(latencies) < interval / 2, latencies  # each ACK was timed from its own heartbeat
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


class _Recorder:
    """Stands in for the playground: records what reached it."""

    def __init__(self):
        self.commands: list[str] = []

    async def command(self, text, upload=None):
        from playground.session import Answer

        self.commands.append(text)
        return Answer()


async def test_the_page_api_refuses_other_sites_other_hosts_and_non_json():
    """Any page the developer visits could POST `/model load x` to 127.0.0.1; DNS rebinding could reach it
    under another name. Only the page's own requests (its host, its origin, JSON) reach the bot."""
    recorder = _Recorder()
    runner, url = await serve(recorder, listen(0))
    port = url.rstrip("/").rsplit(":", 1)[1]
    try:
        async with aiohttp.ClientSession(base_url=url) as http:
            async def post(**kwargs):
                async with http.post("/api/command", **kwargs) as response:
                    return response.status

            assert await post(json={"text": "/help"}) == 200
            assert await post(json={"text": "/help"}, headers={"Origin": f"http://127.0.0.1:{port}"}) == 200
            assert await post(json={"text": "/model load x"}, headers={"Origin": "https://evil.example"}) == 403
            assert await post(json={"text": "/model load x"}, headers={"Origin": "null"}) == 403
            assert await post(json={"text": "/model load x"}, headers={"Host": f"evil.example:{port}"}) == 403
            # a form or text/plain body (what a cross-site <form> can send without asking) is refused
            assert await post(data='{"text": "/model load x"}', headers={"Content-Type": "text/plain"}) == 415
            assert await post(data={"text": "/model load x"}) == 415  # application/x-www-form-urlencoded
            async with http.get("/api/state", headers={"Host": "attacker.example"}) as response:
                assert response.status == 403
        assert recorder.commands == ["/help", "/help"]
    finally:
        await runner.cleanup()
