"""The page and its small JSON API, served on 127.0.0.1.

    GET  /                     the channel page (static/index.html, app.js, style.css)
    GET  /api/state?since=V    the channel; waits up to 25 s for a change from version V (long poll)
    POST /api/command          {text} or multipart (text, file): run a typed slash command
    POST /api/suggest          {text}: the popup above the message box
    POST /api/click            {message_id, custom_id}: press a button
    POST /api/select           {message_id, custom_id, values}: choose in a menu
    POST /api/react            {message_id, emoji}: add or take back a reaction
    GET  /voice/N.wav          the Nth transmission the voice channel carried, as the fake Discord heard it

Files (audio, video, MIDI, pictures) are served by the fake Discord itself, at the attachment
URLs the messages carry, as Discord's CDN serves them.

The page drives a real bot, ``/model load`` included, so only the page itself may use the API:
a request whose ``Host`` is not the address the page is served on (DNS rebinding), or whose
``Origin`` is another site's (any web page the developer visits could POST here), is refused
with 403, and a POST must say it is JSON (``application/json``; a command with a file is
``multipart/form-data``). A cross-site page cannot send JSON without a CORS preflight, which this
server never answers, and a browser names the page's origin in every POST it sends.
"""

from __future__ import annotations

import socket
from pathlib import Path

from aiohttp import web

from fakediscord import Upload
from playground.session import Answer, Playground

STATIC = Path(__file__).with_name("static")
LONG_POLL_S = 25.0
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # Discord's attachment limit; the bot refuses far less (MOZART_MAX_UPLOAD)
PLAYGROUND = web.AppKey("playground", Playground)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")  # names the page may be reached by (with its port)


@web.middleware
async def same_origin_only(request: web.Request, handler):
    """Refuse what did not come from the page itself: a foreign Host or Origin, or a POST that is not JSON."""
    port = request.transport.get_extra_info("sockname")[1] if request.transport else None
    allowed = {f"{host}:{port}" for host in LOCAL_HOSTS}
    if request.host not in allowed:
        raise web.HTTPForbidden(text=f"the playground answers on http://127.0.0.1:{port}/ only")
    origin = request.headers.get("Origin")
    if origin is not None and origin not in {f"http://{host}" for host in allowed}:
        raise web.HTTPForbidden(text="requests from other sites are refused")
    if request.method == "POST":
        json_body = request.content_type == "application/json"
        form = request.path == "/api/command" and request.content_type == "multipart/form-data"
        if not (json_body or form):
            raise web.HTTPUnsupportedMediaType(text="send JSON (Content-Type: application/json)")
    return await handler(request)


def make_app(playground: Playground) -> web.Application:
    app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 64 * 1024, middlewares=[same_origin_only])
    app[PLAYGROUND] = playground
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/api/state", _state)
    app.router.add_post("/api/command", _command)
    app.router.add_post("/api/suggest", _suggest)
    app.router.add_post("/api/click", _click)
    app.router.add_post("/api/select", _select)
    app.router.add_post("/api/react", _react)
    app.router.add_get("/voice/{n:[0-9]+}.wav", _voice)
    return app


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def _state(request: web.Request) -> web.Response:
    playground = request.app[PLAYGROUND]
    since = request.query.get("since")
    state = playground.state() if not since else await playground.changed(since, LONG_POLL_S)
    return web.json_response(state)


async def _json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="expected a JSON body") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


def _reply(answer: Answer, error_status: int = 404) -> web.Response:
    """An action's answer: 200, or ``error_status`` with the message for the person (404: the message is gone)."""
    return web.json_response(answer.to_json(), status=200 if answer.error is None else error_status)


def _message_id(body: dict) -> int:
    try:
        return int(body["message_id"])
    except (KeyError, TypeError, ValueError):
        raise web.HTTPBadRequest(text="message_id is missing") from None


async def _command(request: web.Request) -> web.Response:
    playground = request.app[PLAYGROUND]
    upload = None
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        text = str(form.get("text", ""))
        file = form.get("file")
        if isinstance(file, web.FileField):
            upload = Upload(file.filename or "upload.mid", file.file.read(), file.content_type)
    else:
        text = str((await _json_body(request)).get("text", ""))
    return _reply(await playground.command(text, upload), error_status=400)


async def _suggest(request: web.Request) -> web.Response:
    body = await _json_body(request)
    try:
        found = await request.app[PLAYGROUND].suggestions(str(body.get("text", "")))
    except TimeoutError:  # the bot did not answer an autocomplete in time: no popup, as in Discord
        found = []
    return web.json_response(found)


async def _click(request: web.Request) -> web.Response:
    body = await _json_body(request)
    return _reply(await request.app[PLAYGROUND].click(_message_id(body), str(body.get("custom_id", ""))))


async def _select(request: web.Request) -> web.Response:
    body = await _json_body(request)
    values = [str(v) for v in body.get("values") or []]
    return _reply(await request.app[PLAYGROUND].click(_message_id(body), str(body.get("custom_id", "")), values))


async def _react(request: web.Request) -> web.Response:
    body = await _json_body(request)
    return _reply(await request.app[PLAYGROUND].toggle_reaction(_message_id(body), str(body.get("emoji", ""))))


async def _voice(request: web.Request) -> web.Response:
    wav = await request.app[PLAYGROUND].capture_wav(int(request.match_info["n"]))
    if wav is None:
        raise web.HTTPNotFound(text="no such transmission (yet)")
    return web.Response(body=wav, content_type="audio/wav")


def listen(port: int = 0) -> socket.socket:
    """The page's socket on 127.0.0.1 (``port`` 0: a free one); taken first, so a busy port fails fast."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


async def serve(playground: Playground, sock: socket.socket) -> tuple[web.AppRunner, str]:
    """Serve the page on ``sock`` (from ``listen``); returns the runner and the page's URL."""
    # long polls wait up to LONG_POLL_S: a closed page cancels its handler, and stopping does not wait for them
    runner = web.AppRunner(make_app(playground), access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    host, bound = sock.getsockname()[:2]
    return runner, f"http://{host}:{bound}/"
