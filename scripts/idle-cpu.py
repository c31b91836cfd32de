#!/usr/bin/env python3
"""Idle CPU of a `dispersy node` that hosts many communities and has no traffic but the walk.

Starts `dispersy tracker` and N nodes on 127.0.0.1, each hosting the same C communities (new
random ids, a text message each), lets them find each other, then measures for S seconds the
CPU time (utime + stime from /proc/PID/stat) and the driver's wake-ups (GET /api/v1/stats) of
every node and of the tracker. Prints one JSON object; a table with --table.

The reference figure is the limit Dispersy's users complained of: 30 % of a core while idle
(anchors.md). `ratio_to_complaint` is the measured share of a core divided by 0.30.

usage: scripts/idle-cpu.py [--dispersy BIN] [--communities 10] [--nodes 3] [--seconds 60]
                           [--warmup 40] [--table]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

COMPLAINT = 0.30
TICK = os.sysconf("SC_CLK_TCK")


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces: fields start after the last ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def get(api: str, path: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(f"http://{api}/api/v1{path}", timeout=timeout) as resp:
        return json.load(resp)


def spec(community: str, i: int) -> str:
    return f"""name = "idle-{i}"
community = "{community}"
version = 2

[[message]]
name = "text"
byte = 1
authentication = "member"
distribution = "full-sync"
destination = "community"
payload = "text"
"""


def wait_api(api: str, proc: subprocess.Popen, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node exited with {proc.returncode} before its API answered")
        try:
            get(api, "/node", timeout=1.0)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the API at {api} did not answer within {limit} s")


def verified(api: str) -> int:
    """Verified candidates summed over the node's communities."""
    return sum(int(c.get("candidates", 0)) for c in get(api, "/communities")["communities"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dispersy", default=None, help="the dispersy binary (default: build release)")
    p.add_argument("--communities", type=int, default=10)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--warmup", type=float, default=40.0)
    p.add_argument("--table", action="store_true", help="also print a Markdown table on stderr")
    a = p.parse_args()
    if not (1 <= a.communities <= 200 and 1 <= a.nodes <= 20 and 1 <= a.seconds <= 3600):
        p.error("out of range: 1-200 communities, 1-20 nodes, 1-3600 seconds")

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = a.dispersy
    if binary is None:
        subprocess.run(["cargo", "build", "-q", "--release", "-p", "dispersy-cli"], cwd=root,
                       check=True)
        binary = os.path.join(root, "target", "release", "dispersy")

    work = tempfile.mkdtemp(prefix="dispersy-idle-")
    procs: list[subprocess.Popen] = []
    try:
        specs = []
        for i in range(a.communities):
            path = os.path.join(work, f"community-{i}.toml")
            with open(path, "w") as f:
                f.write(spec(secrets.token_hex(20), i))
            specs.append(path)
        tracker_addr = f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
        log = open(os.path.join(work, "tracker.log"), "w")
        tracker = subprocess.Popen([binary, "tracker", "--listen", tracker_addr,
                                    "--status-interval", "0"],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        procs.append(tracker)
        nodes = []
        for n in range(a.nodes):
            api = f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
            cmd = [binary, "node", "--data-dir", os.path.join(work, f"node-{n}"),
                   "--listen", "127.0.0.1:0", "--api", api, "--tracker", tracker_addr]
            for s in specs:
                cmd += ["--community", s]
            log = open(os.path.join(work, f"node-{n}.log"), "w")
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env={**os.environ, "RUST_LOG": "warn"})
            procs.append(proc)
            nodes.append((proc, api))
        for proc, api in nodes:
            wait_api(api, proc, 30.0)
        time.sleep(a.warmup)
        found = [verified(api) for _, api in nodes]

        def sample() -> list[tuple[float, dict]]:
            return [(cpu_seconds(proc.pid), get(api, "/stats").get("driver", {}))
                    for proc, api in nodes]

        t0, before, tracker0 = time.monotonic(), sample(), cpu_seconds(tracker.pid)
        time.sleep(a.seconds)
        t1, after, tracker1 = time.monotonic(), sample(), cpu_seconds(tracker.pid)
        wall = t1 - t0
        per_node = []
        for (c0, d0), (c1, d1), f in zip(before, after, found):
            def delta(key: str) -> int:
                return int(d1.get(key, 0)) - int(d0.get(key, 0))
            share = (c1 - c0) / wall
            per_node.append({
                "cpu_seconds": round(c1 - c0, 4),
                "cpu_share": round(share, 5),
                "wakeups_per_minute": round(delta("wakeups") * 60 / wall, 1),
                "timer_wakeups_per_minute": round(delta("wakeups_timer") * 60 / wall, 1),
                "datagrams_in_per_minute": round(delta("received") * 60 / wall, 1),
                "datagrams_out_per_minute": round(delta("sent") * 60 / wall, 1),
                "bytes_out_per_minute": round(delta("sent_bytes") * 60 / wall, 1),
                "verified_candidates_at_start": f,
            })
        worst = max(n["cpu_share"] for n in per_node)
        result = {
            "benchmark": "idle-cpu",
            "communities": a.communities,
            "nodes": a.nodes,
            "seconds": round(wall, 2),
            "walk_steps_per_minute_expected": a.communities * 12,
            "nodes_measured": per_node,
            "tracker_cpu_share": round((tracker1 - tracker0) / wall, 5),
            "worst_node_cpu_share": worst,
            "complaint_cpu_share": COMPLAINT,
            "ratio_to_complaint": round(worst / COMPLAINT, 5),
        }
        print(json.dumps(result, indent=2))
        if a.table:
            print("| node | CPU (% of a core) | wake-ups/min | datagrams in/min | out/min |",
                  file=sys.stderr)
            print("|---|---|---|---|---|", file=sys.stderr)
            for i, n in enumerate(per_node):
                print(f"| {i} | {100 * n['cpu_share']:.3f} | {n['wakeups_per_minute']} | "
                      f"{n['datagrams_in_per_minute']} | {n['datagrams_out_per_minute']} |",
                      file=sys.stderr)
        dead = [p.returncode for p in procs if p.poll() is not None]
        if dead:
            print(f"idle-cpu: a process exited during the run: {dead}", file=sys.stderr)
            return 1
        return 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
