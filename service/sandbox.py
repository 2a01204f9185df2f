"""Killable work: composing, rendering and parsing uploads in child processes with a deadline.

A thread cannot be stopped: a job past its time would keep a core busy, and whoever waits for it
would be told it failed while it still runs. So the studio's workers (``Studio(isolate=True)``)
each own a child process holding the served model versions (``Sandbox``), and an uploaded MIDI
file is parsed in a child of its own (``call``). Past the deadline the child's whole process group
(ffmpeg encoders included) is killed with SIGKILL and waited for; only then does the caller hear
``JobTimeoutError``, so a person's turn is given back when the work has truly stopped. The next
job gets a fresh child.

Children come from a fork server that imported the engine once (``context``): a child starts in a
fraction of a second, loads the model folders it is given and never shares a thread or a lock with
the bot's event loop. Jobs and results cross a pipe as pickles: both ends are this program.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from composer.errors import MozartError

log = logging.getLogger(__name__)

# What the fork server imports once, so that children start without importing torch again.
PRELOAD = ["composer.generate.generator", "composer.render.api", "composer.music.midi_io"]
START_TIMEOUT_S = 120.0  # a child that has not loaded its models by then is killed
POLL_S = 0.25  # how often a running job checks whether its callers gave up
_context_lock = threading.Lock()
_context = None


class JobTimeoutError(MozartError):
    def __init__(self, seconds: float, what: str = "Your piece"):
        self.seconds = seconds
        super().__init__(f"{what} took longer than {seconds:g} s, so I stopped it. A shorter piece "
                         f"(fewer bars, or a faster tempo) will fit.")


class AbandonedError(MozartError):
    """Every caller of a running job gave up (cancelled): its child was killed."""

    def __init__(self):
        super().__init__("Nobody waits for this piece any more; it was stopped.")


class SandboxError(MozartError):
    def __init__(self):
        super().__init__("The composer working on your piece stopped unexpectedly; nothing was posted. "
                         "Please try again.")


def context():
    """The fork-server context (created once, with the engine preloaded)."""
    global _context
    with _context_lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _context = ctx
        return _context


# -- one-shot calls ------------------------------------------------------------------------
def _parse_midi(data: bytes, **kwargs):
    from composer.music.midi_io import import_midi

    return import_midi(data, **kwargs)


CALLS: dict[str, Callable] = {"import_midi": _parse_midi}  # what ``call`` may run, by name


def _call_child(conn, name: str, args: tuple, kwargs: dict) -> None:
    os.setsid()  # its own process group: a kill takes whatever it started with it
    try:
        conn.send(("ok", CALLS[name](*args, **kwargs)))
    except BaseException as e:  # handed to the caller, who turns it into a message
        conn.send(("error", _portable(e)))
    finally:
        conn.close()


async def call(name: str, *args, timeout_s: float, what: str = "Reading your file", **kwargs):
    """``CALLS[name](*args, **kwargs)`` in a child process; killed past ``timeout_s`` (``JobTimeoutError``)."""
    ctx = context()
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_call_child, args=(sender, name, args, kwargs), daemon=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, process.start)
    sender.close()
    try:
        ready = await loop.run_in_executor(None, receiver.poll, timeout_s)
        if not ready:
            raise JobTimeoutError(timeout_s, what)
        try:
            status, value = await loop.run_in_executor(None, receiver.recv)
        except (EOFError, OSError):
            raise SandboxError() from None
    finally:
        await loop.run_in_executor(None, _stop, process)
        receiver.close()
    if status == "error":
        raise value
    return value


# -- a worker's child: models loaded once, jobs one batch at a time ------------------------------
def _log_setup() -> tuple[int, str | None]:
    """The parent's log level and format, for a child to log as it does (to the same stderr)."""
    root = logging.getLogger()
    formatter = root.handlers[0].formatter if root.handlers else None
    return root.getEffectiveLevel(), getattr(formatter, "_fmt", None)


def _sandbox_child(conn, folders: dict[str, str], device: str, log_setup: tuple[int, str | None]) -> None:
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the bot, which stops its children
    level, fmt = log_setup
    logging.basicConfig(level=level, **({"format": fmt} if fmt else {}))
    from composer.generate.generator import Generator, compose_on_one_cpu_thread
    from service.studio import Studio, outcome, warm_up_renderer

    compose_on_one_cpu_thread(device)
    generators = [Generator.load(folder, device) for folder in folders.values()]
    studio = Studio(generators[0], workers=1)  # never started: its run_job and run_batch do the work here
    for generator in generators[1:]:
        studio.add(generator)
    warm_up_renderer()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        _, jobs, versions = message
        for version, folder in versions.items():
            if version not in studio.generators:
                studio.add(Generator.load(folder, device))

        def reporter(i):
            return lambda stage: conn.send(("progress", i, stage))

        seconds = [{} for _ in jobs]
        if len(jobs) == 1:
            outcomes = [outcome(studio.run_job, jobs[0], reporter(0), seconds[0])]
        else:
            outcomes = studio.run_batch(jobs, [reporter(i) for i in range(len(jobs))], seconds)
        conn.send(("done", [(result, _portable(error) if error is not None else None)
                            for result, error in outcomes]))


class Sandbox:
    """One child process that composes and renders with the studio's model versions.

    ``run(jobs, reports, deadline_s, abandoned)`` sends a batch and waits for its outcomes; past the
    deadline, or once ``abandoned()`` says every caller gave up, the child is killed and waited for
    before ``JobTimeoutError`` (or ``AbandonedError``) is raised. The next run starts a new child.
    """

    def __init__(self, folders: Callable[[], dict[str, str]], device: str, name: str = "sandbox"):
        self._folders = folders  # version -> model folder, as served now
        self.device = device
        self.name = name
        self.process = None
        self.pgid: int | None = None  # the child's process group: what a kill ends
        self._conn = None
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-io")
        self.kills = 0  # children killed (deadline or abandoned)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    async def start(self) -> None:
        if self.alive:
            return
        ctx = context()
        parent, child = ctx.Pipe()
        self.process = ctx.Process(target=_sandbox_child, args=(child, self._folders(), self.device, _log_setup()),
                                   name=self.name, daemon=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._io, self.process.start)
        child.close()
        self._conn = parent
        ready = await loop.run_in_executor(self._io, parent.poll, START_TIMEOUT_S)
        message = await loop.run_in_executor(self._io, parent.recv) if ready else None
        if not message or message[0] != "ready":
            await self.kill()
            raise SandboxError()
        self.pgid = message[1]

    async def run(self, jobs: list, reports: list[Callable[[str], None]], deadline_s: float | None,
                  abandoned: Callable[[], bool] = lambda: False) -> list[tuple]:
        """Outcomes ``(result, error)`` of ``jobs``, one per job, as ``Studio.run_batch`` gives them."""
        await self.start()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._io, self._conn.send, ("run", jobs, self._folders()))
        deadline = None if deadline_s is None else time.monotonic() + deadline_s
        while True:
            receiving = loop.run_in_executor(self._io, self._recv)
            while True:
                wait = POLL_S if deadline is None else min(POLL_S, max(0.0, deadline - time.monotonic()))
                done, _ = await asyncio.wait({receiving}, timeout=wait)
                if done:
                    break
                if abandoned():
                    await self.kill(receiving)
                    raise AbandonedError()
                if deadline is not None and time.monotonic() >= deadline:
                    await self.kill(receiving)
                    raise JobTimeoutError(deadline_s)
            message = receiving.result()
            if message is None:  # the child died on its own (out of memory, a crash)
                await self.kill()
                raise SandboxError()
            if message[0] == "progress":
                reports[message[1]](message[2])
            elif message[0] == "done":
                return message[1]

    def _recv(self):
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            return None

    async def kill(self, receiving: asyncio.Future | None = None) -> None:
        """SIGKILL the child's process group and wait until the child is gone."""
        process = self.process
        if process is None:
            return
        self.kills += 1
        await asyncio.get_running_loop().run_in_executor(None, _stop, process, self.pgid)
        if receiving is not None:
            await asyncio.gather(receiving, return_exceptions=True)  # ends: the pipe closed
        if self._conn is not None:
            self._conn.close()
        self.process, self._conn, self.pgid = None, None, None

    async def close(self) -> None:
        if self.alive:
            try:
                self._conn.send(("stop",))
            except (OSError, ValueError):
                pass
            await asyncio.get_running_loop().run_in_executor(None, self.process.join, 5)
        await self.kill()
        self._io.shutdown(wait=False, cancel_futures=True)


def _stop(process, pgid: int | None = None) -> None:
    """Kill ``process`` (and its process group) and reap it."""
    group = pgid or process.pid
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, TypeError):
        pass
    if process.is_alive():
        process.kill()
    process.join(10)


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (a zombie child of a killed child counts as gone)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # members that are only zombies waiting for their parent's reaping do not use the CPU
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def _portable(error: BaseException) -> BaseException:
    """``error`` if it survives a pickle round trip; else a MozartError (or RuntimeError) with its message."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        if isinstance(error, MozartError):
            return MozartError(str(error))
        return RuntimeError(f"{type(error).__name__}: {error}")
