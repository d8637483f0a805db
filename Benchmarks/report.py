#!/usr/bin/env python3
"""Turns the raw records of Benchmarks/run.sh into one markdown report.

    python3 Benchmarks/report.py WORKDIR [--out FILE]

WORKDIR holds what run.sh recorded:
    meta.tsv   key<TAB>value (date, machine, load, settings, target lists)
    gates.tsv  target<TAB>ok|FAILED<TAB>detail
    runs.tsv   phase<TAB>target<TAB>round<TAB>wrk-or-h2load-output-file<TAB>proxy-cpu-ticks<TAB>upstream-cpu-ticks
               <TAB>proxy-peak-rss-kib<TAB>miss-first-index<TAB>miss-requests
    tls.tsv    target<TAB>TLS version / cipher, ALPN as curl saw them in the gate (TLS targets)
    idle.json  the output of idle_conns.py (optional)
meta.tsv's tool_of says which load generator produced a target's outputs (wrk, h2load); proto_of its protocol
(http: plain HTTP/1.1; h1: HTTP/1.1 over TLS; h2: HTTP/2 over TLS).
Prints the report, writes it to --out, exits 1 if a gate failed, a run had a non-2xx response, a socket error or
an h2load failed/errored/timed-out request, a run is missing, or the idle-connection check failed.
"""

import argparse
import json
import os
import re
import statistics
import sys

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_wrk(text):
    """requests/s, total requests, p50/p99 in ms, non-2xx, socket errors {connect, read, write, timeout}."""
    out = {"rps": None, "requests": None, "p50": None, "p99": None, "non2xx": 0,
           "socket": {"connect": 0, "read": 0, "write": 0, "timeout": 0}}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+)", text, re.M)
    if m:
        out["requests"] = int(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
        if m:
            out[key] = float(m.group(1)) * UNITS[m.group(2)]
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["socket"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    return out


def parse_h2load(text):
    """h2load's summary: requests/s ("finished in ..., N req/s"), the requests done in the measured window, status
    codes, failed/errored/timeout counts and the "time for request" min/max/mean/sd (h2load has no percentiles).
    h2load's "failed" counts the responses without a 2xx/3xx status and the errored streams; "errored" the
    streams that ended without a complete response."""
    out = {"rps": None, "requests": None, "p50": None, "p99": None, "non2xx": 0,
           "socket": {"connect": 0, "read": 0, "write": 0, "timeout": 0},
           "h2": {"failed": 0, "errored": 0, "timeout": 0, "other_failed": 0},
           "min": None, "max": None, "mean": None, "sd": None, "tls": None, "alpn": None}
    m = re.search(r"^finished in ([\d.]+)(\w+), ([\d.]+) req/s", text, re.M)
    if m:
        out["rps"] = float(m.group(3))
    m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", text, re.M)
    if m:
        _total, _started, done, _ok, failed, errored, timeout = map(int, m.groups())
        out["requests"] = done
        out["h2"].update(failed=failed, errored=errored, timeout=timeout)
    m = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text, re.M)
    if m:
        _s2, s3, s4, s5 = map(int, m.groups())
        out["non2xx"] = s3 + s4 + s5
        # failed = 4xx + 5xx + errored + responses without a status; count what the other fields do not.
        out["h2"]["other_failed"] = max(0, out["h2"]["failed"] - s4 - s5 - out["h2"]["errored"])
    t = r"([\d.]+)(us|ms|s)"
    m = re.search(rf"^time for request:\s+{t}\s+{t}\s+{t}\s+{t}", text, re.M)
    if m:
        g = m.groups()
        for i, key in enumerate(("min", "max", "mean", "sd")):
            out[key] = float(g[2 * i]) * UNITS[g[2 * i + 1]]
    m = re.search(r"^TLS Protocol: (\S+)\s*\nCipher: (\S+)", text, re.M)
    if m:
        out["tls"] = f"{m.group(1)} / {m.group(2)}"
    m = re.search(r"^Application protocol: (\S+)", text, re.M)
    if m:
        out["alpn"] = m.group(1)
    return out


def fmt_ms(ms):
    if ms is None:
        return "n/a"
    if ms < 1:
        return f"{ms * 1000:.0f} µs"
    if ms < 10:
        return f"{ms:.2f} ms"
    return f"{ms:.1f} ms"


def fmt_int(x):
    return f"{x:,.0f}"


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir")
    parser.add_argument("--out")
    args = parser.parse_args()
    w = args.workdir

    meta = {row[0]: (row[1] if len(row) > 1 else "") for row in read_tsv(os.path.join(w, "meta.tsv"))}
    gates = {row[0]: (row[1], row[2] if len(row) > 2 else "") for row in read_tsv(os.path.join(w, "gates.tsv"))}
    tick_us = 1e6 / float(meta.get("clk_tck", "100"))
    targets = meta.get("targets", "").split()
    lat_targets = meta.get("lat_targets", "").split()
    if meta.get("lat_rounds") == "0":  # LAT_ROUNDS=0: no latency pass, nothing missing
        lat_targets = []
    rounds = int(meta.get("rounds", "0"))
    lat_rounds = int(meta.get("lat_rounds", "0"))
    proxy_of = dict(item.split("=", 1) for item in meta.get("proxy_of", "").split())
    baseline_of = dict(item.split("=", 1) for item in meta.get("baseline_of", "").split())
    tool_of = dict(item.split("=", 1) for item in meta.get("tool_of", "").split())
    proto_of = dict(item.split("=", 1) for item in meta.get("proto_of", "").split())
    tls_seen = {row[0]: (row[1] if len(row) > 1 else "") for row in read_tsv(os.path.join(w, "tls.tsv"))}
    plain_targets = [t for t in targets if proto_of.get(t, "http") == "http"]
    tls_targets = [t for t in targets if proto_of.get(t, "http") != "http"]

    runs = {}  # (phase, target) -> list of dicts
    for row in read_tsv(os.path.join(w, "runs.tsv")):
        phase, target, rnd, out_file, pticks, uticks, hwm = row[:7]
        miss_first, miss_sent = (row[7], row[8]) if len(row) >= 9 else ("", "")
        try:
            with open(out_file) as f:
                text = f.read()
        except OSError:
            text = ""
        rec = parse_h2load(text) if tool_of.get(target) == "h2load" else parse_wrk(text)
        rec.setdefault("h2", {"failed": 0, "errored": 0, "timeout": 0, "other_failed": 0})
        rec.update(
            round=int(rnd), proxy_ticks=int(pticks) if pticks else None, up_ticks=int(uticks) if uticks else None,
            hwm_kib=int(hwm) if hwm else None,
            miss_first=int(miss_first) if miss_first else None, miss_sent=int(miss_sent) if miss_sent else None,
        )
        runs.setdefault((phase, target), []).append(rec)

    problems = []
    lines = []
    add = lines.append

    def summary(phase, target):
        recs = runs.get((phase, target), [])
        if not recs:
            return None
        rps = [r["rps"] for r in recs if r["rps"] is not None]
        reqs = sum(r["requests"] or 0 for r in recs)
        s = {
            "n": len(recs),
            "rps_med": statistics.median(rps) if rps else None,
            "rps_min": min(rps) if rps else None,
            "rps_max": max(rps) if rps else None,
            "p50": statistics.median([r["p50"] for r in recs if r["p50"] is not None] or [0]) if recs else None,
            "p99": statistics.median([r["p99"] for r in recs if r["p99"] is not None] or [0]) if recs else None,
            "requests": reqs,
            "non2xx": sum(r["non2xx"] for r in recs),
            "socket": {k: sum(r["socket"][k] for r in recs) for k in ("connect", "read", "write", "timeout")},
            "h2": {k: sum(r["h2"][k] for r in recs) for k in ("failed", "errored", "timeout", "other_failed")},
            # h2load: the median over the rounds of the mean, the largest max; TLS as h2load reported it.
            "mean": statistics.median([r["mean"] for r in recs if r.get("mean") is not None] or [0]),
            "max": max([r["max"] for r in recs if r.get("max") is not None] or [0]),
            "tls": sorted({f"{r['tls']}, ALPN {r['alpn']}" for r in recs if r.get("tls")}),
            "cpu_us": None, "up_cpu_us": None,
            "hwm_kib": max([r["hwm_kib"] for r in recs if r["hwm_kib"]] or [0]) or None,
            "missing": any(r["rps"] is None for r in recs),
        }
        pt = [r["proxy_ticks"] for r in recs if r["proxy_ticks"] is not None]
        if pt and reqs:
            s["cpu_us"] = sum(pt) * tick_us / reqs
        ut = [r["up_ticks"] for r in recs if r["up_ticks"] is not None]
        if ut and reqs:
            s["up_cpu_us"] = sum(ut) * tick_us / reqs
        return s

    def error_count(s):
        h2 = s["h2"]
        return s["non2xx"] + sum(s["socket"].values()) + h2["errored"] + h2["timeout"] + h2["other_failed"]

    def errors_text(s):
        sock = sum(s["socket"].values())
        h2 = s["h2"]
        if s["non2xx"] == 0 and sock == 0 and h2["failed"] == 0 and h2["errored"] == 0 and h2["timeout"] == 0:
            return "0"
        parts = []
        if s["non2xx"]:
            parts.append(f"non-2xx {s['non2xx']}")
        if sock:
            parts.append("socket " + ", ".join(f"{k} {v}" for k, v in s["socket"].items() if v))
        if h2["failed"] or h2["errored"] or h2["timeout"]:
            parts.append(f"h2load failed {h2['failed']}, errored {h2['errored']}, timeout {h2['timeout']}")
        return "; ".join(parts)

    add("# Gatehouse benchmark results")
    add("")
    add(f"- Date: {meta.get('date', '?')} (wall time of the whole run: {meta.get('wall', '?')})")
    add(f"- Machine: {meta.get('nproc', '?')} CPUs (`nproc`), {meta.get('cpu_model', '?')}, "
        f"kernel {meta.get('kernel', '?')}, {meta.get('mem', '?')}")
    add(f"- Load (`uptime`): at start `{meta.get('load_start', '?')}`; after the timed runs "
        f"`{meta.get('load_after_runs', '?')}`; at end `{meta.get('load_end', '?')}`")
    add(f"- Gatehouse: {meta.get('gatehouse', '?')}")
    add(f"- Peers: {meta.get('nginx_version', '?')}, {meta.get('wrk_version', '?')}"
        + (f", {meta['h2load_version']}, {meta.get('openssl_version', '?')}" if "h2load_version" in meta else ""))
    add(f"- Load generator: `wrk -t{meta.get('threads')} -c{meta.get('connections')} -d{meta.get('duration')} "
        f"--latency`, {rounds} rounds interleaved ({' '.join(targets)}), warm-up {meta.get('warmup')} per "
        f"target excluded; latency pass `wrk -t1 -c1 -d{meta.get('lat_duration')} --latency`, "
        f"{lat_rounds} round(s)"
        + (f"; HTTP/2: `h2load -t{meta.get('h2_threads')} -c{meta.get('h2_clients')} -m{meta.get('h2_streams')} "
           f"-D {meta.get('duration')} --warm-up-time {meta.get('h2_warmup')}`" if tls_targets else ""))
    add(f"- Keys and tokens: {meta.get('keys_via', '?')}; cache-miss list: {meta.get('miss_tokens', '?')} "
        "distinct RS256 tokens")
    add("")

    # Throughput table.
    add(f"## Throughput: HTTP/1.1, {meta.get('connections')} keep-alive connections")
    add("")
    add("| target | req/s median (min–max) | × nginx-proxy | p50 | p99 | CPU µs/req (proxy) | "
        "CPU µs/req (upstream) | peak RSS (proxy) | errors |")
    add("|---|---|---|---|---|---|---|---|---|")
    sums = {t: summary("main", t) for t in targets if gates.get(t, ("",))[0] == "ok"}

    def checked_summary(t, lead, blanks):
        """The target's summary; a failed gate or missing runs get their row (cells `lead`, then `blanks`) and
        a problem here. None when there is nothing to measure."""
        gate = gates.get(t, ("missing", "no gate result"))
        if gate[0] != "ok":
            add(f"| {t} | {lead}**FAILED** (correctness gate: {gate[1]}) |{blanks}")
            problems.append(f"{t}: correctness gate failed: {gate[1]}")
            return None
        s = sums[t]
        if s is None or s["n"] < rounds or s["missing"]:
            add(f"| {t} | {lead}**incomplete** ({0 if s is None else s['n']} of {rounds} runs with a result) |{blanks}")
            problems.append(f"{t}: {0 if s is None else s['n']} of {rounds} runs produced a result")
        return s

    def measured_cells(t, s, proxied, cpu_absent):
        """req/s, ratio to the target's baseline, CPU, upstream CPU, peak RSS and errors (errors also noted
        as a problem). CPU and RSS are "—" for a target without a proxy process."""
        base = sums.get(baseline_of.get(t, ""))
        ratio = (f"{s['rps_med'] / base['rps_med']:.2f}"
                 if base and base["rps_med"] and s["rps_med"] else "n/a")
        cpu = f"{s['cpu_us']:.1f}" if proxied and s["cpu_us"] is not None else (cpu_absent if proxied else "—")
        up = f"{s['up_cpu_us']:.1f}" if s["up_cpu_us"] is not None else "n/a"
        rss = f"{s['hwm_kib'] / 1024:.1f} MiB" if proxied and s["hwm_kib"] else "—"
        err = errors_text(s)
        if err != "0":
            problems.append(f"{t}: errors in timed runs: {err}")
        rps = (f"{fmt_int(s['rps_med'])} ({fmt_int(s['rps_min'])}–{fmt_int(s['rps_max'])})"
               if s["rps_med"] else "n/a")
        return rps, ratio, cpu, up, rss, err

    for t in plain_targets:
        s = checked_summary(t, "", " | | | | | | |")
        if s is None:
            continue
        rps, ratio, cpu, up, rss, err = measured_cells(t, s, proxy_of.get(t, "none") != "none", "—")
        add(f"| {t} | {rps} | {ratio} | {fmt_ms(s['p50'])} | {fmt_ms(s['p99'])} | {cpu} | {up} | {rss} | {err} |")
    add("")
    add("× nginx-proxy: median req/s over nginx-proxy's median in the same run (16 KiB targets over "
        "nginx-proxy-16k). CPU µs/req: utime+stime of the proxy process (gatehouse; nginx-proxy's workers "
        "summed) over all timed rounds, divided by the requests wrk completed in them; upstream: the upstream "
        "nginx worker, the same way. Peak RSS: the largest VmHWM over the rounds (reset before each run); for "
        "nginx-proxy the workers' summed. p50/p99: median over the rounds of wrk's latency distribution. "
        "Errors: wrk's non-2xx/3xx responses and socket errors summed over the rounds.")
    add("")

    miss_recs = runs.get(("main", "gatehouse-miss"), [])
    if miss_recs and miss_recs[0]["miss_sent"] is not None:
        total_tokens = int(meta.get("miss_tokens", "0") or 0)
        parts = []
        for r in miss_recs:
            first, sent = r["miss_first"] or 0, r["miss_sent"] or 0
            fresh = max(0, min(sent, total_tokens - first)) if total_tokens else 0
            reused = sent - fresh
            parts.append(f"round {r['round']}: {fmt_int(sent)} requests, "
                         f"{100.0 * reused / max(sent, 1):.0f}% with a token already sent earlier")
        add(f"Cache-miss run: {fmt_int(total_tokens)} distinct tokens, used in order across the warm-up and the "
            f"rounds, wrapping round when exhausted; " + "; ".join(parts) + ". Gatehouse caches verified tokens "
            "per event loop (10,000 entries each), so a reused token can be a cache hit: with reuse above 0% "
            "the figure overstates the pure cache-miss rate. Set MISS_TOKENS to at least the requests of the "
            "warm-up plus all rounds for a pure-miss figure.")
        add("")

    # Latency table.
    add("## Latency: 1 connection (`wrk -t1 -c1`)")
    add("")
    add("| target | p50 | p99 | added p50 over direct | req/s | errors |")
    add("|---|---|---|---|---|---|")
    lat = {}
    for t in lat_targets:
        gate = gates.get(t, ("missing", ""))
        if gate[0] != "ok":
            add(f"| {t} | **FAILED** (correctness gate) | | | | |")
            continue
        s = summary("lat", t)
        if s is None or s["missing"]:
            add(f"| {t} | **incomplete** | | | | |")
            problems.append(f"{t}: latency run produced no result")
            continue
        lat[t] = s
        direct = lat.get("direct-16k" if t.endswith("-16k") else "direct")
        added = f"{(s['p50'] - direct['p50']) * 1000:+.0f} µs" if direct and t not in ("direct", "direct-16k") else "—"
        err = errors_text(s)
        if err != "0":
            problems.append(f"{t} (latency): errors: {err}")
        add(f"| {t} | {fmt_ms(s['p50'])} | {fmt_ms(s['p99'])} | {added} | {fmt_int(s['rps_med'] or 0)} | {err} |")
    add("")

    # Idle connections.
    add("## Idle keep-alive connections")
    add("")
    def load_idle(name):
        path = os.path.join(w, name)
        if not os.path.exists(path):
            return None
        try:
            with open(path) as f:
                return json.loads(f.read().strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"error": f"unreadable {name}"}

    idle = None  # the figure held against the goal: the fresh process's
    for name, label in (("idle-fresh.json", "a fresh gatehouse process (the marginal cost)"),
                        ("idle.json", "the gatehouse process that served the timed runs (reuses memory freed "
                                      "by earlier load, so it reads lower)")):
        result = load_idle(name)
        if result is None:
            continue
        if "rss_before_kib" in result:
            add(f"- {label}: {result['count']} connections, each after one RS256-authenticated request "
                f"({result['ok']} answered 200, {result.get('open_at_measurement', '?')} still open when measured): "
                f"RSS {result['rss_before_kib'] / 1024:.1f} MiB → {result['rss_after_kib'] / 1024:.1f} MiB, "
                f"**{result['kib_per_conn']:.1f} KiB per idle connection**")
            if result["ok"] != result["count"]:
                problems.append(f"idle connections ({name}): only {result['ok']} of {result['count']} answered "
                                f"200 ({result.get('first_failure')})")
            if idle is None:
                idle = result
        else:
            add(f"- {label}: not measured ({result.get('error', 'no result')})")
            problems.append(f"idle connections ({name}): {result.get('error', 'no result')}")
    if not os.path.exists(os.path.join(w, "idle-fresh.json")) and not os.path.exists(os.path.join(w, "idle.json")):
        reason = meta.get("idle_skipped") or "no result"
        add(f"Not measured: {reason}.")
        if not meta.get("idle_skipped"):
            problems.append(f"idle connections: {reason}")
    add("")

    # HTTPS: HTTP/1.1 (wrk) and HTTP/2 (h2load) over TLS, nginx-tls and gatehouse's TLS listener.
    versions = set()
    for t in tls_targets:
        versions.update(v.split(" / ")[0] for v in (sums.get(t) or {}).get("tls", []))
        if t in tls_seen:
            versions.add(tls_seen[t].split(" / ")[0].split(",")[0])
    versions.discard("")
    tls_title = ", ".join(sorted(versions)).replace("TLSv", "TLS ") if versions else "TLS"
    h2_desc = f"h2load {meta.get('h2_clients', '8')}×{meta.get('h2_streams', '8')}"
    add(f"## HTTPS ({tls_title}, same certificate): HTTP/1.1 (wrk) and HTTP/2 ({h2_desc})")
    add("")
    if not tls_targets:
        add("Not run (none of the TLS targets was selected with ONLY).")
        add("")
    else:
        add("| target | protocol | req/s median (min–max) | × nginx-tls (same protocol) | latency | "
            "CPU µs/req (proxy) | CPU µs/req (upstream) | peak RSS (proxy) | errors |")
        add("|---|---|---|---|---|---|---|---|---|")
        for t in tls_targets:
            proto = proto_of.get(t)
            label = (f"HTTP/1.1, wrk {meta.get('connections')} conns" if proto == "h1"
                     else f"HTTP/2, {h2_desc}")
            s = checked_summary(t, f"{label} | ", " | | | | | |")
            if s is None:
                continue
            rps, ratio, cpu, up, rss, err = measured_cells(t, s, True, "n/a")
            if tool_of.get(t) == "h2load":
                latency = f"mean {fmt_ms(s['mean'])}, max {fmt_ms(s['max'])}"
            else:
                latency = f"p50 {fmt_ms(s['p50'])}, p99 {fmt_ms(s['p99'])}"
            add(f"| {t} | {label} | {rps} | {ratio} | {latency} | {cpu} | {up} | {rss} | {err} |")
        add("")
        add("× nginx-tls: median req/s over nginx-tls-h1's (HTTP/1.1 rows) or nginx-tls-h2's (HTTP/2 rows) in the same "
            "run. nginx-tls is nginx-proxy's configuration (2 workers, the same keep-alive pool to the same upstream) "
            "behind `listen ... ssl http2`; gatehouse serves these from its `server.tls` listener in the same process "
            "as the plain targets. Both hold the same throw-away EC P-256 certificate. HTTP/1.1: "
            f"`wrk -t{meta.get('threads')} -c{meta.get('connections')}` as in the plain table (no ALPN; one TLS "
            f"connection per wrk connection). HTTP/2: `h2load -t{meta.get('h2_threads')} -c{meta.get('h2_clients')} "
            f"-m{meta.get('h2_streams')}` (the same {int(meta.get('h2_clients', 8)) * int(meta.get('h2_streams', 8))} "
            "requests in flight over far fewer connections), fixed duration, its own warm-up excluded; req/s from "
            "h2load's `finished in …, N req/s`. Latency: wrk's p50/p99 (median over the rounds); h2load has no "
            "percentiles, so its rows show the mean (median over the rounds) and the max (largest over the rounds) "
            "of `time for request`. CPU µs/req and peak RSS as in the plain table (for h2load runs the CPU is read "
            "after h2load's warm-up, over its measured window, and divided by the requests it completed in that "
            "window). Errors: wrk as above; h2load's non-2xx status codes and its failed/errored/timeout requests "
            "(its `failed` includes the non-2xx and the errored ones).")
        add("")
        seen = []
        for t in tls_targets:
            s = sums.get(t)
            parts = []
            if t in tls_seen:
                parts.append(f"curl (gate): {tls_seen[t]}")
            if s and s.get("tls"):
                parts.append("h2load: " + "; ".join(s["tls"]))
            if parts:
                seen.append(f"{t}: " + "; ".join(parts))
        if seen:
            add("Negotiated: " + ". ".join(seen) + ".")
            add("")

    # Goals from issues 6 and 3.
    def ratio(a, b, key="rps_med"):
        sa, sb = sums.get(a), sums.get(b)
        if not sa or not sb or not sa.get(key) or not sb.get(key):
            return None
        return sa[key] / sb[key]

    goals = []

    def goal(text, value, ok):
        if value is None:
            goals.append(f"| {text} | n/a | |")
        else:
            goals.append(f"| {text} | {value} | {'met' if ok else '**missed**'} |")

    for t, name in (("gatehouse-rs256", "RS256"), ("gatehouse-es256", "ES256")):
        r = ratio(t, "nginx-proxy")
        goal(f"{name} throughput ≥ 0.8× nginx-proxy (stretch 1.0×)", r and f"{r:.3f}×", r is not None and r >= 0.8)
        c = ratio(t, "nginx-proxy", "cpu_us")
        goal(f"{name} CPU/req ≤ 1.5× nginx-proxy's (stretch 1.0×)", c and f"{c:.2f}×", c is not None and c <= 1.5)
        g = ratio(t, "gatehouse-none")
        goal(f"{name} throughput ≥ 0.9× gatehouse-none (issue 3)", g and f"{g:.3f}×", g is not None and g >= 0.9)
    r = ratio("gatehouse-none", "nginx-proxy")
    goal("auth: none throughput ≥ 0.9× nginx-proxy", r and f"{r:.3f}×", r is not None and r >= 0.9)
    r = ratio("gatehouse-none-16k", "nginx-proxy-16k")
    goal("16 KiB throughput ≥ 0.8× nginx-proxy", r and f"{r:.3f}×", r is not None and r >= 0.8)
    gm = sums.get("gatehouse-miss")
    if gm and gm.get("rps_med"):
        goals.append(f"| cache-miss path (RS256), report the number | {fmt_int(gm['rps_med'])} req/s, "
                     f"{gm['cpu_us']:.0f} µs CPU/req | reported |")
    for t, base in (("gatehouse-tls-none-h1", "nginx-tls-h1"), ("gatehouse-tls-rs256-h1", "nginx-tls-h1"),
                    ("gatehouse-tls-none-h2", "nginx-tls-h2"), ("gatehouse-tls-rs256-h2", "nginx-tls-h2")):
        st, sb = sums.get(t), sums.get(base)
        if st and st.get("rps_med"):
            r = f", {st['rps_med'] / sb['rps_med']:.2f}× {base}" if sb and sb.get("rps_med") else ""
            cpu = f", {st['cpu_us']:.0f} µs CPU/req" if st.get("cpu_us") is not None else ""
            goals.append(f"| HTTPS {t} (issue 5), report the number | {fmt_int(st['rps_med'])} req/s{r}{cpu} "
                         "| reported |")
    if all(k in lat for k in ("direct", "nginx-proxy")):
        np_added = lat["nginx-proxy"]["p50"] - lat["direct"]["p50"]
        for t in ("gatehouse-none", "gatehouse-rs256", "gatehouse-es256"):
            if t in lat:
                added = lat[t]["p50"] - lat["direct"]["p50"]
                goal(f"1 connection: {t} added p50 ≤ nginx-proxy's ({np_added * 1000:.0f} µs)",
                     f"{added * 1000:.0f} µs", added <= np_added)
    if idle and "kib_per_conn" in idle:
        goal("idle connection ≤ 8 KiB RSS", f"{idle['kib_per_conn']:.1f} KiB", idle["kib_per_conn"] <= 8)
    total_errors = sum(error_count(s) for s in sums.values() if s)
    goal("zero errors in every run", f"{total_errors}", total_errors == 0)
    add("## Goals (issue 6; issue 3's JWT vs auth: none; issue 5's HTTPS figures)")
    add("")
    add("| goal | measured | |")
    add("|---|---|---|")
    lines.extend(goals)
    add("")

    if problems:
        add("## Problems")
        add("")
        for p in problems:
            add(f"- {p}")
        add("")

    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
