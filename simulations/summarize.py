#!/usr/bin/env python3
"""Headline figures of the experiments (docs/experiments.md) from their results.json files.

usage: simulations/summarize.py [RESULTS_DIR ...]
       (default: every simulations/results/exp-*/ that has a results.json)

Prints one Markdown section per run. Standard library only.
"""

import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load(path):
    with open(path / "results.json") as f:
        return json.load(f)


def pct(x):
    return "n/a" if x is None else f"{100 * x:.1f} %"


def secs(x):
    return "never" if x is None else f"{x:.0f} s"


def peers(r):
    return [n for n in r["nodes"] if n["role"] == "peer"]


def post_size(r):
    """Mean wire size of a post, from what peers received."""
    got = r["adapter"].get("counters", {}).get("peer", {}).get("received_by_type", {}).get("1")
    if not got or not got["packets"]:
        return None
    return got["bytes"] / got["packets"]


def engine(r):
    cache = r["adapter"].get("verified_cache") if isinstance(r["adapter"], dict) else None
    cache_text = "off"
    if cache:
        total = cache["hits"] + cache["misses"]
        cache_text = f"{cache['hits']} hits of {total} ({pct(cache['hits'] / total if total else 0)})"
    return (
        f"- run: seed {r['seed']}, ended `{r['end_reason']}` at {r['simulated_s']:.0f} s simulated; "
        f"{r['engine']['events']} events in {r['wall_s']:.1f} s wall = {r['events_per_sec']:.0f} events/s; "
        f"verification cache {cache_text}\n"
        f"- event log hash `{r['event_log_hash'][:16]}`; violations: {len(r['violations'])}"
    )


def bytes_per_peer(r, until_s):
    ps = peers(r)
    sent = statistics.mean(n["sent_bytes"] for n in ps)
    recv = statistics.mean(n["recv_bytes"] for n in ps)
    rate = (sent + recv) / until_s / 1000 if until_s else 0
    return (
        f"- bytes per peer: {sent / 1e6:.2f} MB sent, {recv / 1e6:.2f} MB received "
        f"({rate:.2f} kB/s both ways over {until_s:.0f} s)"
    )


def dissemination(r):
    step = r["step_interval_s"]
    items = r["items"]
    steps = [i["t100_s"] / step for i in items if i["t100_s"] is not None]
    lines = [f"- items injected: {len(items)}; reached every online peer: {len(steps)}"]
    if steps:
        lines.append(
            f"- steps ({step:.0f} s) until every online peer held the item: median "
            f"{statistics.median(steps):.1f}, max {max(steps):.1f} (Dispersy: 19, target <= 10)"
        )
    for key, name in [("t50_s", "50 %"), ("t90_s", "90 %"), ("t99_s", "99 %")]:
        xs = [i[key] / step for i in items if i[key] is not None]
        if xs:
            lines.append(f"- steps to {name}: median {statistics.median(xs):.1f}")
    cov = [i["final_coverage"] for i in items]
    if cov:
        lines.append(f"- final coverage: mean {pct(statistics.mean(cov))}, min {pct(min(cov))}")
    lines.append(bytes_per_peer(r, r["simulated_s"]))
    return lines


def convergence(r):
    items = r["items"]
    last = max((i["injected_s"] for i in items), default=0.0)
    cov = [i["final_coverage"] for i in items]
    lines = [
        f"- items injected: {len(items)} (last at {last:.0f} s); converged (every item at every "
        f"online peer) at {secs(r['convergence_s'])}"
        + ("" if r["convergence_s"] is None else f", {r['convergence_s'] - last:.0f} s after the last injection")
    ]
    if cov:
        lines.append(f"- final coverage: mean {pct(statistics.mean(cov))}, min {pct(min(cov))}")
    everyone = len(peers(r))
    dips = [p["t_s"] for p in r["series"] if p["online_peers"] < everyone]
    if dips:
        back = next((p["t_s"] for p in r["series"] if p["t_s"] > max(dips)), None)
        lines.append(f"- churn: as few as {min(p['online_peers'] for p in r['series'])} of {everyone} "
                     f"peers online; all back online from {secs(back)}")
    stored = r["adapter"].get("stored_posts_per_peer")
    if stored:
        lines.append(f"- posts stored per peer: min {stored['min']}, mean {stored['mean']:.0f}, max {stored['max']}")
    lines.append(bytes_per_peer(r, r["convergence_s"] or r["simulated_s"]))
    return lines


def goodput(r, downlink_kbps):
    """Unique post bytes each peer stored, over what its downlink could carry meanwhile."""
    size = post_size(r)
    stored = r["adapter"].get("stored_posts_per_peer")
    start = min((i["injected_s"] for i in r["items"]), default=0.0)
    until = r["convergence_s"] or r["simulated_s"]
    if not size or not stored or until <= start:
        return ["- goodput: n/a"]
    useful = stored["mean"] * size * 8
    capacity = downlink_kbps * 1000 * (until - start)
    return [
        f"- goodput: {useful / 8 / 1000:.1f} kB of posts ({size:.0f} B each) per peer in "
        f"{until - start:.0f} s = {pct(useful / capacity)} of a {downlink_kbps} kbit/s downlink"
    ]


def nat(r):
    p = r.get("pairs")
    if not p:
        return ["- pairs: not recorded"]

    def frac(c, of):
        return pct(c["connected"] / c[of] if c.get(of) else None)

    a = p["all"]
    lines = [
        f"- peer pairs where both sides sent to the other: {a.get('mutual', 0)}; got through both "
        f"ways: {a['connected']} = {frac(a, 'mutual')} (Dispersy: 77 % of NAT firewalls punctured)",
        f"- pairs where either side sent: {a['tried']} ({frac(a, 'tried')} connected; most of the "
        f"rest are punctures nobody walked to)",
    ]
    lines.append("- punctured by NAT classes (connected / both sent): " + "; ".join(
        f"{k} {frac(v, 'mutual')} of {v.get('mutual', 0)}"
        for k, v in sorted(p["by_class"].items())
    ))
    mix = ", ".join(f"{k} {v}" for k, v in r["nat_mix"].items())
    lines.append(f"- peers by NAT: {mix}")
    return lines


def sync(r):
    """What Bloom-filter sync did beside pushing on creation (dispersy node kind only)."""
    a = r["adapter"] if isinstance(r["adapter"], dict) else {}
    s = a.get("sync")
    if not s or not r["items"]:
        return []
    peer = a.get("counters", {}).get("peer", {})
    accepted = peer.get("accepted", {}).get("1", 0)
    created = peer.get("created", {}).get("1", 0)
    pushed = created * a.get("config", {}).get("push", 0)
    return [
        f"- posts accepted by peers: {accepted} (created {created}, pushed on creation at most "
        f"{pushed}); sync: {s.get('requests', 0)} requests with a Bloom filter, "
        f"{s.get('packets_sent', 0)} packets sent in answer, {s.get('catchup_requests', 0)} "
        f"catch-up requests, {s.get('reconcile_packets', 0)} packets by reconciliation"
    ]


def summarize(path):
    r = load(path)
    name = r["scenario"]
    out = [f"### {name}", "", engine(r)]
    if "dissemination" in name:
        out += dissemination(r)
    elif "nat" in name:
        out += nat(r)
    else:
        out += convergence(r)
    if "challenged" in name:
        out += goodput(r, 128)
    out += sync(r)
    return "\n".join(out) + "\n"


def main():
    dirs = [Path(a) for a in sys.argv[1:]] or sorted(
        p.parent for p in (HERE / "results").glob("exp-*/results.json")
    )
    for d in dirs:
        print(summarize(d))


if __name__ == "__main__":
    main()
