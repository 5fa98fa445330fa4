"""Run the simulator: bind, start the worker processes, report readiness, stop on a signal.

Several workers share ONE port through SO_REUSEPORT: each worker listens on its own socket
bound to the same port, and the kernel spreads new connections evenly over them by hashing
the connection's addresses. One socket shared by fork would let whichever process wakes first
accept a whole burst of connections (libuv accepts until EAGAIN), leaving the other workers
idle in exactly the benchmark case of many keep-alive connections opened at once. Port 0
still works: the parent binds a non-listening socket first to learn and hold the port
(a socket that does not listen receives no connections), the workers' sockets join that port.

With one worker the server runs in the calling process (so the pid you pin is the server).
Workers watch a lifeline pipe from the parent and stop if it closes, so an orphaned worker
never keeps the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

import uvloop

from lavabench.sim.capacity import Slots
from lavabench.sim.connection import Connection
from lavabench.sim.eventlog import EventLog
from lavabench.sim.handler import Handler, SimApp, build_app
from lavabench.sim.settings import SimSettings

BACKLOG = 4096
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


class _Stop(Exception):
    """Raised in the parent by SIGTERM/SIGINT to leave its wait loop."""


def serve(
    settings: SimSettings,
    catalog: Mapping[str, Mapping[str, Any]],
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; call `on_ready(base_url)` once every worker accepts.

    Raises ValueError for a bad catalog or answer key, OSError if the port cannot be bound,
    RuntimeError if a worker dies.
    """
    app = build_app(settings, catalog)
    if settings.workers == 1:
        sock = _listening_socket(host, port, reuse_port=False)
        base_url = _base_url(host, sock.getsockname()[1])
        ready = (lambda: on_ready(base_url)) if on_ready is not None else None
        _run_worker(app, sock, ready, lifeline_fd=None)
        return
    _serve_many(app, host, port, on_ready)


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


def _serve_many(app: SimApp, host: str, port: int, on_ready: Callable[[str], None] | None) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((host, port))
    bound_port = holder.getsockname()[1]
    ready_r, ready_w = os.pipe()
    life_r, life_w = os.pipe()
    children: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def _raise_stop(signum: int, frame: object) -> None:
        raise _Stop

    try:
        for sig in previous:
            signal.signal(sig, _raise_stop)
        for _ in range(app.settings.workers):
            pid = os.fork()
            if pid == 0:
                _child_main(app, host, bound_port, holder, (ready_r, ready_w), (life_r, life_w))
            children.append(pid)
        os.close(ready_w)
        os.close(life_r)
        _await_ready(ready_r, len(children), children)
        holder.close()
        if on_ready is not None:
            on_ready(_base_url(host, bound_port))
        pid, status = os.wait()
        children.remove(pid)
        raise RuntimeError(f"simulator worker {pid} exited unexpectedly (status {status})")
    except _Stop:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_children(children)
        for fd in (ready_r, life_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        holder.close()


def _child_main(
    app: SimApp,
    host: str,
    port: int,
    holder: socket.socket,
    ready: tuple[int, int],
    lifeline: tuple[int, int],
) -> None:
    """Body of a forked worker; never returns."""
    code = 0
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        holder.close()
        os.close(ready[0])
        os.close(lifeline[1])
        sock = _listening_socket(host, port, reuse_port=True)
        ready_w = ready[1]

        def _ready() -> None:
            os.write(ready_w, b"r")
            os.close(ready_w)

        _run_worker(app, sock, _ready, lifeline_fd=lifeline[0])
    except BaseException:  # a worker must never fall back into the parent's code
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def _await_ready(ready_r: int, count: int, children: list[int]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    got = 0
    while got < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"only {got} of {count} simulator workers started in time")
        readable, _, _ = select.select([ready_r], [], [], min(left, 0.2))
        if readable:
            data = os.read(ready_r, count)
            if not data:
                raise RuntimeError("simulator workers exited before they were ready")
            got += len(data)
        for pid in children:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.remove(pid)
                raise RuntimeError(f"simulator worker {pid} exited at start (status {status})")


def _stop_children(children: list[int]) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while children:
        for pid in list(children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                children.remove(pid)
        if children and time.monotonic() > deadline:
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        if children:
            time.sleep(0.01)


def _run_worker(
    app: SimApp,
    sock: socket.socket,
    on_listening: Callable[[], None] | None,
    lifeline_fd: int | None,
) -> None:
    """One event loop serving `sock` until a signal (or a closed lifeline) stops it."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_worker(app, sock, on_listening, lifeline_fd))


async def _worker(
    app: SimApp,
    sock: socket.socket,
    on_listening: Callable[[], None] | None,
    lifeline_fd: int | None,
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if lifeline_fd is not None:
        loop.add_reader(lifeline_fd, stop.set)  # readable only at EOF: the parent is gone
    log = EventLog(app.settings.log_path)
    handler = Handler(app, log)
    connections: set[Connection] = set()
    slots = Slots(app.settings.capacity)
    server = await loop.create_server(
        lambda: Connection(handler, log, connections, slots), sock=sock, backlog=BACKLOG
    )
    try:
        if on_listening is not None:
            on_listening()
        await stop.wait()
    finally:
        server.close()
        for conn in list(connections):
            conn.abort()
        await asyncio.sleep(0)
        log.close()
        if lifeline_fd is not None:
            loop.remove_reader(lifeline_fd)
