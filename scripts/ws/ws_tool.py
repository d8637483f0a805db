#!/usr/bin/env python3
"""WebSocket server and client for Gatehouse's tunnel tests (the `websockets` library from PyPI).

    python3 scripts/ws/ws_tool.py serve
        Starts an echo server on 127.0.0.1 (a port the kernel picks) and prints ONE JSON line {"port": N}.
        Each connection first receives a text message with the upgrade request it got, as JSON
        {"path": ..., "headers": [[name, value], ...]}, then every message is echoed back as it came (text or
        binary; fragmented messages are reassembled and echoed whole). A path containing "reject" gets 403
        instead of 101. It serves until stdin reaches end of file.

    python3 scripts/ws/ws_tool.py client --url ws://127.0.0.1:N/path [--header "Name: value"]... [--timeout S]
        Connects, reads the server's first message, sends a 1 MiB binary message, a text message and a
        fragmented text message (3 fragments), checks each echo byte for byte, closes, and prints ONE JSON line:
        {"ok": true, "upgrade_headers": [[name, value], ...], "echoes": 3}
        or, when the handshake is refused: {"ok": false, "status": 401, "body": "..."}; exit status 0 in both
        cases, and for unexpected errors (a wrong echo, a timeout), reported as {"ok": false, "error": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from http import HTTPStatus


async def serve() -> None:
    from websockets.asyncio.server import serve as ws_serve

    async def handler(ws):
        request = ws.request
        await ws.send(json.dumps({"path": request.path, "headers": [[k, v] for k, v in request.headers.raw_items()]}))
        async for message in ws:
            await ws.send(message)

    def process_request(connection, request):
        # A path containing "reject" is refused with 403 (the upgrade a test expects to fail at the upstream).
        if "reject" in request.path:
            return connection.respond(HTTPStatus.FORBIDDEN, "upgrade refused by the upstream\n")
        return None

    async with ws_serve(handler, "127.0.0.1", 0, max_size=8 * 1024 * 1024, process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        loop = asyncio.get_running_loop()
        # Serve until stdin closes (the test process ends or stops us).
        await loop.run_in_executor(None, sys.stdin.read)


async def client(url: str, headers: list[str], timeout: float) -> int:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    extra = []
    for h in headers:
        name, _, value = h.partition(":")
        extra.append((name.strip(), value.strip()))
    try:
        async with asyncio.timeout(timeout):
            async with connect(url, additional_headers=extra, max_size=8 * 1024 * 1024, open_timeout=timeout) as ws:
                first = json.loads(await ws.recv())
                big = os.urandom(1024 * 1024)
                await ws.send(big)
                if await ws.recv() != big:
                    raise RuntimeError("1 MiB binary echo differs")
                await ws.send("hello through gatehouse")
                if await ws.recv() != "hello through gatehouse":
                    raise RuntimeError("text echo differs")
                await ws.send(["frag-1 ", "frag-2 ", "frag-3"])  # one message in three frames
                if await ws.recv() != "frag-1 frag-2 frag-3":
                    raise RuntimeError("fragmented echo differs")
                print(json.dumps({"ok": True, "upgrade_headers": first["headers"], "path": first["path"], "echoes": 3}))
                return 0
    except InvalidStatus as exc:
        response = exc.response
        print(json.dumps({"ok": False, "status": response.status_code, "body": response.body.decode("utf-8", "replace")[:500]}))
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="ws_tool")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("serve")
    c = sub.add_parser("client")
    c.add_argument("--url", required=True)
    c.add_argument("--header", action="append", default=[])
    c.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    if args.cmd == "serve":
        asyncio.run(serve())
        return 0
    try:
        return asyncio.run(client(args.url, args.header, args.timeout))
    except Exception as exc:  # report (the caller checks "ok"), do not hang
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
        return 0


if __name__ == "__main__":
    sys.exit(main())
