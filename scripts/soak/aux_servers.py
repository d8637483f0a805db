"""The soak's own servers, on one asyncio loop in a background thread: an upstream that can fail on command (reset
connections, answer late) and a JWKS key server that can go down, answer slowly or answer garbage; plus the
WebSocket load. Everything binds 127.0.0.1 on ports the kernel picks.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
import threading
import time


def reset(writer: asyncio.StreamWriter) -> None:
    """Closes with a TCP RST (SO_LINGER 0), as a crashing or overloaded upstream does."""
    sock = writer.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


async def read_head(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None


class Aux:
    """Starts the loop thread; the servers' modes are switched with set_* (thread-safe)."""

    BODY = b"f" * 4096

    def __init__(self, jwks: dict):
        self.loop = asyncio.new_event_loop()
        self.flaky_mode = "ok"  # ok | reset | slow
        self.slow_seconds = 4.0
        self.key_mode = "up"  # up | down | slow | garbage
        self.jwks = jwks
        self.key_requests = 0
        self.key_server = None
        self.key_port = 0
        self.flaky_port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("aux servers did not start")

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        flaky = await asyncio.start_server(self._flaky, "127.0.0.1", 0, backlog=1024)
        self.flaky_port = flaky.sockets[0].getsockname()[1]
        self.key_server = await asyncio.start_server(self._keys, "127.0.0.1", 0, reuse_address=True)
        self.key_port = self.key_server.sockets[0].getsockname()[1]

    def call(self, coro_or_fn, *args):
        """Runs a function or coroutine function on the loop and returns its result."""
        async def wrapper():
            result = coro_or_fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(60)

    # -- the failing upstream ------------------------------------------------------------------------------

    async def _flaky(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await read_head(reader)
                if head is None:
                    break
                mode = self.flaky_mode
                if mode == "reset":
                    if random.random() < 0.5:
                        return reset(writer)  # before any response byte: Gatehouse answers 502
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n" + self.BODY[:1000])
                    await writer.drain()
                    return reset(writer)  # mid-body: the client sees a truncated response
                if mode == "slow":
                    await asyncio.sleep(self.slow_seconds)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n" + self.BODY)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not writer.transport.is_closing():
                writer.close()

    def set_flaky(self, mode: str) -> None:
        self.flaky_mode = mode

    # -- the key server ------------------------------------------------------------------------------------

    async def _keys(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await read_head(reader)
            if head is None:
                return
            self.key_requests += 1
            mode = self.key_mode
            if mode == "slow":
                await asyncio.sleep(15)  # beyond Gatehouse's 10 s key-fetch timeout
            if mode == "garbage":
                body = b"<html>502 Bad Gateway</html>\x00\xff{"
                ctype = b"application/json"
            else:
                body = json.dumps(self.jwks).encode()
                ctype = b"application/json"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _set_keys(self, mode: str) -> None:
        if mode == "down" and self.key_mode != "down":
            self.key_server.close()
            await self.key_server.wait_closed()
        elif mode != "down" and self.key_mode == "down":
            self.key_server = await asyncio.start_server(
                self._keys, "127.0.0.1", self.key_port, reuse_address=True)
        self.key_mode = mode

    def set_keys(self, mode: str) -> None:
        self.call(self._set_keys, mode)

    def publish(self, jwks: dict) -> None:
        self.jwks = jwks

    # -- WebSocket load ------------------------------------------------------------------------------------

    async def _ws_window(self, url: str, seconds: float, persistent: int, new_per_second: float) -> dict:
        from websockets.asyncio.client import connect

        stats = {"handshakes": 0, "messages": 0, "errors": 0, "error_kinds": {}, "latencies_us": []}
        deadline = time.monotonic() + seconds

        def error(kind: str) -> None:
            stats["errors"] += 1
            stats["error_kinds"][kind] = stats["error_kinds"].get(kind, 0) + 1

        async def session(interval: float, messages: int | None) -> None:
            try:
                started = time.monotonic()
                async with connect(url, open_timeout=10, close_timeout=5, max_size=1 << 20) as ws:
                    stats["handshakes"] += 1
                    stats["latencies_us"].append(int((time.monotonic() - started) * 1e6))
                    await asyncio.wait_for(ws.recv(), 10)  # the upstream's greeting
                    sent = 0
                    while time.monotonic() < deadline and (messages is None or sent < messages):
                        payload = f"soak {random.random()}"
                        t0 = time.monotonic()
                        await ws.send(payload)
                        echo = await asyncio.wait_for(ws.recv(), 10)
                        if echo != payload:
                            error("wrong_echo")
                            return
                        stats["messages"] += 1
                        stats["latencies_us"].append(int((time.monotonic() - t0) * 1e6))
                        sent += 1
                        await asyncio.sleep(interval)
            except asyncio.TimeoutError:
                error("timeout")
            except Exception as exc:  # noqa: BLE001 - every failure is counted by kind
                error(type(exc).__name__)

        tasks = [asyncio.create_task(session(0.1, None)) for _ in range(persistent)]
        while time.monotonic() < deadline - 1:
            tasks.append(asyncio.create_task(session(0.05, 5)))
            await asyncio.sleep(1 / new_per_second)
        await asyncio.gather(*tasks)
        lat = sorted(stats.pop("latencies_us"))
        stats["p99_us"] = lat[int(len(lat) * 0.99)] if lat else 0
        return stats

    def ws_window(self, url: str, seconds: float, persistent: int = 4, new_per_second: float = 2) -> dict:
        return asyncio.run_coroutine_threadsafe(
            self._ws_window(url, seconds, persistent, new_per_second), self.loop).result(seconds + 60)
