#!/usr/bin/env python3
"""Build the NAT lab's connectivity matrix from the hosts' JSON-line outputs.

Usage: nat-lab-report.py OUT_DIR [--expect FILE]... [--kept SECONDS] [--json PATH]

OUT_DIR is what `scripts/nat-lab run` leaves: hosts.json (the hosts, in order) and NAME.jsonl per
host. Each host's output must follow the JSON-line schema of scripts/ipv8_peer.py: one "started"
event carrying "mid" (the host's id), and "message-received" events carrying "sender" (the id of
the sending host), "t" (seconds since that host started) and optionally "walks" (its walk steps
so far). Lines that are not JSON objects are counted and skipped.

A pair A,B "connected" when a message from A arrived at B and one from B arrived at A. There is no
relay in the lab, so any arrival is a direct path through both NATs. Its time is the later of the
two first arrivals (each host's own clock from its start; hosts start within ~0.1 s of each
other), its steps the larger "walks" count at those arrivals.

With --kept SECONDS, a connected pair is also "kept" when a message arrived each way at least
SECONDS after the pair connected: the path through both NATs was still open then. Send
messages rarely (ipv8_peer.py --send-interval longer than the NAT timeout) so that only the
walker's own traffic can have kept the mappings alive.

"mapping-check" events (scripts/nat-lab-probe.py) are listed per host.

--expect FILE (repeatable) holds lines (blank and '#' lines ignored):
    pair HOST_A HOST_B yes|no|any
    mapping HOST DELAY[:KEEPALIVE] yes|no
    reached HOST N            (HOST connected with at least N other hosts)
    kept HOST_A HOST_B yes|no|any   (needs --kept)
Each line is checked and the report ends with "nat-lab: N passed, N failed"; the exit status is
1 if any expectation failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def load_events(path: str) -> tuple[list[dict], int]:
    events, bad = [], 0
    if not os.path.exists(path):
        return events, bad
    with open(path, errors="replace") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(obj, dict):
                events.append(obj)
            else:
                bad += 1
    return events, bad


def fmt_spec(delay: float, keep: float | None) -> str:
    spec = f"{delay:g}"
    return spec + (f":{keep:g}" if keep else "")


def main() -> int:  # noqa: C901, PLR0912, PLR0915
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--expect", action="append", default=[],
                        help="expectations file (see above; repeatable)")
    parser.add_argument("--kept", type=float, default=None, metavar="SECONDS",
                        help="also report, per connected pair, whether a message arrived each way "
                             "at least SECONDS after the pair connected (was the path still open?)")
    parser.add_argument("--json", default=None, help="write the matrix here (default OUT_DIR/matrix.json)")
    args = parser.parse_args()

    with open(os.path.join(args.out_dir, "hosts.json")) as handle:
        hosts = json.load(handle)
    names = [h["name"] for h in hosts]
    events = {}
    mids: dict[str, str] = {}
    notes = []
    for name in names:
        evs, bad = load_events(os.path.join(args.out_dir, f"{name}.jsonl"))
        events[name] = evs
        started = next((e for e in evs if e.get("event") == "started"), None)
        if started is None:
            notes.append(f"{name}: no started event")
        else:
            mids[str(started.get("mid"))] = name
        if bad:
            notes.append(f"{name}: {bad} lines that are not JSON objects")

    # first[b][a] = first message-received event at b from a
    first: dict[str, dict[str, dict]] = {n: {} for n in names}
    for name in names:
        for e in events[name]:
            if e.get("event") != "message-received":
                continue
            sender = mids.get(str(e.get("sender")))
            if sender is None or sender == name or sender in first[name]:
                continue
            first[name][sender] = e

    # all arrival times at b from a
    arrivals: dict[tuple[str, str], list[float]] = {}
    for name in names:
        for e in events[name]:
            sender = mids.get(str(e.get("sender")))
            if e.get("event") == "message-received" and sender is not None and sender != name:
                arrivals.setdefault((sender, name), []).append(float(e.get("t", 0)))

    pairs = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ab, ba = first[b].get(a), first[a].get(b)
            entry = {"a": a, "b": b, "a_to_b": ab is not None, "b_to_a": ba is not None,
                     "connected": ab is not None and ba is not None}
            if entry["connected"]:
                entry["seconds"] = round(max(float(ab.get("t", 0)), float(ba.get("t", 0))), 2)
                steps = [x.get("walks") for x in (ab, ba) if isinstance(x.get("walks"), int)]
                entry["steps"] = max(steps) if steps else None
                entry["seen_at_b"] = ab.get("address")
                entry["seen_at_a"] = ba.get("address")
                if args.kept is not None:
                    after = entry["seconds"] + args.kept
                    entry["kept"] = (max(arrivals.get((a, b), [0])) >= after
                                     and max(arrivals.get((b, a), [0])) >= after)
                    entry["last_each_way"] = [max(arrivals.get((a, b), [0])),
                                              max(arrivals.get((b, a), [0]))]
            pairs[f"{a}|{b}"] = entry

    def cell(a: str, b: str) -> str:
        if a == b:
            return "."
        key = f"{a}|{b}" if f"{a}|{b}" in pairs else f"{b}|{a}"
        p = pairs[key]
        if p["connected"]:
            steps = "" if p["steps"] is None else f"/{p['steps']}"
            return f"ok {p['seconds']:.1f}s{steps}"
        if p["a_to_b"] or p["b_to_a"]:
            return "one-way"
        return "--"

    width = max([len(n) for n in names] + [14]) + 1
    print("connectivity (ok SECONDS/STEPS = a message each way; one-way; -- = none)")
    print("".ljust(width) + "".join(n.ljust(width) for n in names))
    for a in names:
        print(a.ljust(width) + "".join(cell(a, b).ljust(width) for b in names))
    for p in pairs.values():
        if (p["a_to_b"] or p["b_to_a"]) and not p["connected"]:
            way = f"{p['a']} -> {p['b']}" if p["a_to_b"] else f"{p['b']} -> {p['a']}"
            print(f"  one-way: only {way} arrived")

    if args.kept is not None:
        print(f"\nkept (a message each way at least {args.kept:g} s after the pair connected)")
        print("".ljust(width) + "".join(n.ljust(width) for n in names))
        for a in names:
            row = []
            for b in names:
                if a == b:
                    row.append(".")
                    continue
                key = f"{a}|{b}" if f"{a}|{b}" in pairs else f"{b}|{a}"
                p = pairs[key]
                row.append("--" if not p["connected"] else ("kept" if p["kept"] else "no"))
            print(a.ljust(width) + "".join(c.ljust(width) for c in row))

    mapping = []
    for name in names:
        for e in events[name]:
            if e.get("event") == "mapping-check":
                mapping.append({"host": name, "delay_s": e.get("delay_s"),
                                "keepalive_s": e.get("keepalive_s"), "arrived": e.get("arrived"),
                                "incomplete": bool(e.get("incomplete"))})
    if mapping:
        print("\nmapping checks (idle DELAY s, optional keep-alive every K s; did the delayed "
              "echo arrive?)")
        for m in mapping:
            keep = f" keep-alive {m['keepalive_s']:g}s" if m["keepalive_s"] else " idle"
            extra = " (incomplete: host ended first)" if m["incomplete"] else ""
            print(f"  {m['host']:<{width}} {m['delay_s']:>5g}s{keep:<18} "
                  f"{'arrived' if m['arrived'] else 'LOST'}{extra}")
    for note in notes:
        print(f"note: {note}")

    out_json = args.json or os.path.join(args.out_dir, "matrix.json")
    with open(out_json, "w") as handle:
        json.dump({"hosts": names, "pairs": list(pairs.values()), "mapping": mapping,
                   "notes": notes}, handle, indent=1)

    if not args.expect:
        return 0
    passed = failed = 0
    lines = []
    for path in args.expect:
        with open(path) as handle:
            lines += [ln.split("#")[0].split() for ln in handle]
    for words in lines:
        if not words:
            continue
        ok, what = False, " ".join(words)
        try:
            if words[0] == "pair":
                a, b, want = words[1], words[2], words[3]
                key = f"{a}|{b}" if f"{a}|{b}" in pairs else f"{b}|{a}"
                got = pairs[key]["connected"]
                ok = want == "any" or got == (want == "yes")
                what += f" (got {'yes' if got else 'no'})"
            elif words[0] == "kept":
                a, b, want = words[1], words[2], words[3]
                key = f"{a}|{b}" if f"{a}|{b}" in pairs else f"{b}|{a}"
                got = bool(pairs[key].get("kept"))
                ok = want == "any" or got == (want == "yes")
                what += f" (got {'yes' if got else 'no'})"
            elif words[0] == "mapping":
                host, spec, want = words[1], words[2], words[3]
                found = [m for m in mapping if m["host"] == host
                         and fmt_spec(float(m["delay_s"]), m["keepalive_s"]) == spec]
                got = bool(found) and bool(found[0]["arrived"]) and not found[0]["incomplete"]
                ok = bool(found) and not found[0]["incomplete"] and got == (want == "yes")
                what += f" (got {'none' if not found else ('yes' if got else 'no')})"
            elif words[0] == "reached":
                host, n = words[1], int(words[2])
                got_n = sum(1 for p in pairs.values()
                            if p["connected"] and host in (p["a"], p["b"]))
                ok = got_n >= n
                what += f" (got {got_n})"
            else:
                what += " (unknown expectation)"
        except (KeyError, IndexError, ValueError) as exc:
            what += f" (error: {exc})"
        print(f"{'PASS' if ok else 'FAIL'} {what}")
        passed += ok
        failed += not ok
    print(f"nat-lab: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
