"""A TCP relay on loopback that delays every chunk by a fixed time, each way: a WAN.

This kernel has no `netem`, so a link's latency is made in user space: the relay
accepts on 127.0.0.1, connects to the server, and forwards each chunk it reads on
either side `delay_s` later, in order (one queue per direction). A request and its
answer on a kept-alive connection then cost about 2 x `delay_s`, a TCP connect one
more round trip, a TLS handshake one or two more (bytes are relayed as they are, so
HTTPS works unchanged). Bandwidth is not limited by default: on loopback it is not
the cost. `rate` (bytes per second, per connection and direction) caps it, as a TCP
stream's window caps it over a long round trip (window / RTT: 4 MiB at 80 ms is ~50 MiB/s),
for the multipart study (`bench/multipart.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
import time

_CHUNK = 256 * 1024


def stop_serving(
    loop: asyncio.AbstractEventLoop,
    thread: threading.Thread,
    server: asyncio.base_events.Server | None,
) -> None:
    """Stop an asyncio server that `loop` runs on `thread` (the relay's, the counting
    proxy's): close it, cancel every task left on the loop (connections and their senders,
    so none is reported "Task was destroyed" at exit), then stop the loop and join."""

    async def stop() -> None:
        if server is not None:
            server.close()
        # Until none is left: a connection's task cancelled here cancels its sender in a
        # `finally` without waiting for it, and a sender left cancelling when the loop
        # stops is reported "Task was destroyed but it is pending" at exit.
        while tasks := [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


class DelayRelay:
    """`with DelayRelay(host, port, delay_s) as relay:` then connect to `relay.port`."""

    def __init__(
        self, upstream_host: str, upstream_port: int, delay_s: float, rate: float = 0.0
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay_s = delay_s
        self.rate = rate  # bytes per second per connection and direction; 0: no limit
        self.connections = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> DelayRelay:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        stop_serving(self._loop, self._thread, self._server)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The loop holds tasks weakly: a connection whose socket went away while its pipe
        # waited was collected pending ("Task was destroyed but it is pending!", 212 times
        # in a WAN run). Held here until it ends, or until `stop_serving` cancels it.
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # A connection cut at shutdown ends quietly: asyncio logs a traceback for every
        # client task that ends cancelled.
        with contextlib.suppress(asyncio.CancelledError):
            await self._relay(reader, writer)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        # The TCP handshake to the far end costs a round trip too.
        await asyncio.sleep(2 * self.delay_s)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """Forward chunks `delay_s` after they were read, in order; EOF likewise."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    with contextlib.suppress(Exception):
                        dst.write_eof()
                    return
                dst.write(data)
                await dst.drain()

        sender = asyncio.create_task(deliver())
        sent_by = 0.0  # with `rate`: when the link has sent what was read so far
        try:
            while True:
                try:
                    data = await src.read(_CHUNK)
                except (ConnectionError, OSError):
                    data = b""
                due = time.monotonic() + self.delay_s
                if self.rate:
                    sent_by = max(time.monotonic(), sent_by) + len(data) / self.rate
                    due = max(due, sent_by + self.delay_s)
                queue.put_nowait((due, data))
                if not data:
                    break
            await sender
        except (ConnectionError, OSError):
            pass
        finally:
            sender.cancel()


class RelayProcess:
    """The same relay in a process of its own (its own interpreter and GIL, away from the
    benchmark's counting proxy): `with RelayProcess(host, port, delay_s) as relay:`."""

    def __init__(
        self, upstream_host: str, upstream_port: int, delay_s: float, rate: float = 0.0
    ) -> None:
        self.args = [upstream_host, str(upstream_port), str(delay_s), str(rate)]
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> RelayProcess:
        self._proc = subprocess.Popen(
            [sys.executable, __file__, *self.args], stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        self.port = int(self._proc.stdout.readline().strip())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)


def main(argv: list[str]) -> None:
    host, port, delay, *rate = argv
    with DelayRelay(host, int(port), float(delay), float(rate[0]) if rate else 0.0) as relay:
        print(relay.port, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.sigwait({signal.SIGTERM, signal.SIGINT})


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main(sys.argv[1:])
