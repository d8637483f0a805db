"""The soak's markdown report: a summary, one row per fault (what its clients saw, whether the next window was
clean), one row per window (rate, p99 per route, RSS) and the RSS slope after warm-up."""

from __future__ import annotations

import os

ROUTES = ["none", "rs", "miss", "session", "16k", "keyed", "flaky", "h2-none", "h2-rs", "ws", "rotated"]


def slope_kib_per_min(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS (KiB) over time (minutes)."""
    if len(samples) < 2:
        return 0.0
    xs = [t / 60 for t, _ in samples]
    ys = [float(v) for _, v in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def seen(d: dict) -> str:
    parts = []
    for route, kinds in sorted(d.items()):
        parts.append(route + " " + ", ".join(f"{k}×{n}" for k, n in sorted(kinds.items())))
    return "; ".join(parts) or "none"


def write_report(out: str, meta: dict, records: list[dict], rss: list[tuple[float, int, str]]) -> None:
    unexpected_total = sum(sum(sum(k.values()) for k in r["unexpected"].values()) for r in records)
    crashed = any(not r.get("alive", True) for r in records)
    requests = sum(sum(v["requests"] for v in r["routes"].values()) for r in records)
    steady = [(t, kib) for t, kib, kind in rss if kind in ("recovery", "clean") and kib > 0]
    after_warmup = [(t, kib) for t, kib, kind in rss if kind != "warm-up" and kib > 0]
    oidc: dict[str, int] = {}
    for r in records:
        if r["kind"] != "fault":
            for k, n in r.get("oidc", {}).items():
                oidc[k] = oidc.get(k, 0) + n
    lines = [
        "# Soak and fault run",
        "",
        f"{meta['started']}, commit {meta['commit']}, {meta['nproc']} cores; {meta['minutes']} minutes in "
        f"{len(records)} windows of {meta['window_s']} s at {meta['load']:.0%} of the capacity measured at the "
        f"start (every route at once, unpaced); gatehouse with `ulimit -n {meta['nofile']}`. "
        "Made by `scripts/soak/run` (docs/SOAK.md).",
        "",
        f"- Requests and WebSocket messages: {requests:,}; unexpected errors: **{unexpected_total}**; "
        f"gatehouse {'**crashed**' if crashed else 'ran throughout without a restart'}.",
        f"- RSS: {rss[0][1] / 1024:.1f} MiB at the start, {max(k for _, k, _ in rss) / 1024:.1f} MiB peak, "
        f"{rss[-1][1] / 1024:.1f} MiB at the end; slope after warm-up {slope_kib_per_min(after_warmup):+.1f} "
        f"KiB/min over every window, {slope_kib_per_min(steady):+.1f} KiB/min over the clean and recovery "
        "windows only." if rss else "- RSS: no samples.",
        "- Logins and session refreshes through Canaille outside the provider fault: "
        + (", ".join(f"{k} ×{n}" for k, n in sorted(oidc.items())) or "none") + ".",
        "",
        "Capacity and pace (req/s):",
        "",
        "| route | capacity (all at once) | paced target |",
        "|---|---:|---:|",
    ]
    for route, rate in meta["capacity"].items():
        lines.append(f"| {route} | {rate:,.0f} | {meta['paces'][route]['target']:,.0f} |")
    lines += ["", "## Faults", "",
              "| window | fault | what the touched routes' clients saw (expected) | unexpected | next window |",
              "|---:|---|---|---|---|"]
    for i, r in enumerate(records):
        if r["kind"] != "fault":
            continue
        nxt = records[i + 1] if i + 1 < len(records) else None
        if nxt is None:
            after = "not run"
        else:
            after = "clean" if not nxt["unexpected"] else "errors: " + seen(nxt["unexpected"])
            if "new_key_accepted_after_s" in nxt:
                t = nxt["new_key_accepted_after_s"]
                after += f"; the key published at the fault's end accepted after {t} s" if t is not None else (
                    "; the key published at the fault's end NOT accepted")
        note = ""
        if r["fault"] == "provider-hung":
            note = "logins and refreshes: " + (", ".join(f"{k} ×{n}" for k, n in sorted(r.get("oidc", {}).items()))
                                               or "none ran")
        if "flood" in r:
            note = (f" (flood: {r['flood']['opened']:,} connections opened, {r['flood']['failed']:,} refused at "
                    f"connect; gatehouse at {r['max_fds']:,} open files"
                    + (f", {r['cpu_pct']:.0f}% of a core" if "cpu_pct" in r else "") + ")")
        shown = seen(r["expected"]) if r["expected"] or not note else ""
        lines.append(f"| {r['window']} | {r['fault']} | {shown}{note} | {seen(r['unexpected'])} | "
                     f"{after} |")
    lines += ["", "## Windows", "",
              "p99 in ms per route; ws = WebSocket handshakes and echoes.", "",
              "| # | kind | fault | req/s | " + " | ".join(ROUTES) + " | RSS MiB | gatehouse CPU | unexpected |",
              "|---:|---|---|---:|" + "---:|" * len(ROUTES) + "---:|---:|---|"]
    for r in records:
        cells = []
        for route in ROUTES:
            v = r["routes"].get(route)
            cells.append(f"{v['p99_us'] / 1000:.1f}" if v and v["requests"] else "-")
        lines.append(f"| {r['window']} | {r['kind']} | {r['fault'] or ''} | {r['total_rps']:,.0f} | "
                     + " | ".join(cells) + f" | {r['rss_kib'] / 1024:.1f} | "
                     + (f"{r['cpu_pct']:.0f}%" if "cpu_pct" in r else "-") + f" | {seen(r['unexpected'])} |")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
