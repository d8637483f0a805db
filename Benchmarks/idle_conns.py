#!/usr/bin/env python3
"""Idle keep-alive connections: RSS cost per connection of a proxy process.

    python3 Benchmarks/idle_conns.py --pid PID --port PORT --path /rs/ --token-file rs.token [--count 1000]

Sends --warmup requests on short-lived connections, reads the process's VmRSS, opens COUNT connections to
127.0.0.1:PORT, sends one authenticated keep-alive request on each and reads its whole response, keeps every
connection open and idle, waits a moment, reads VmRSS again and prints one JSON object:
{"count", "ok", "rss_before_kib", "rss_after_kib", "kib_per_conn", ...}.
Only 127.0.0.1; bounded in time (--timeout seconds for everything).
"""

import argparse
import asyncio
import json
import resource
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def one(port, request, results, writers):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writers.append(writer)
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    results.append(status)


async def run(args):
    token = open(args.token_file).read().strip()
    request = (
        f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
        f"Authorization: Bearer {token}\r\nConnection: keep-alive\r\n\r\n"
    ).encode()
    # Warm-up on a few short-lived connections, so one-time work (key parsing, the first upstream
    # connection, lazy initialisation) is not counted as the cost of the idle connections.
    warm_results, warm_writers = [], []
    for _ in range(args.warmup):
        await one(args.port, request, warm_results, warm_writers)
    for w in warm_writers:
        w.close()
    await asyncio.sleep(args.settle)
    before = rss_kib(args.pid)
    results, writers, failures = [], [], []
    started = time.monotonic()
    batch = 50
    for start in range(0, args.count, batch):
        outcomes = await asyncio.gather(
            *(one(args.port, request, results, writers) for _ in range(min(batch, args.count - start))),
            return_exceptions=True,
        )
        failures.extend(repr(o) for o in outcomes if isinstance(o, BaseException))
    opened = time.monotonic() - started
    await asyncio.sleep(args.settle)
    after = rss_kib(args.pid)
    # Still open? A connection the server closed would read EOF now.
    still_open = sum(1 for w in writers if not w.is_closing() and not w.transport.is_closing())
    for w in writers:
        w.close()
    ok = sum(1 for s in results if s == 200)
    return {
        "count": args.count,
        "ok": ok,
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "open_at_measurement": still_open,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_conn": round((after - before) / max(ok, 1), 2),
        "seconds_to_open": round(opened, 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=10, help="requests on short-lived connections first")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait before each RSS reading")
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    try:
        result = asyncio.run(asyncio.wait_for(run(args), args.timeout))
    except Exception as exc:  # noqa: BLE001 - report, do not hang
        result = {"count": args.count, "ok": 0, "error": repr(exc)}
    print(json.dumps(result))
    sys.exit(0 if result.get("ok") == args.count else 1)


if __name__ == "__main__":
    main()
