#!/usr/bin/env python3
"""Run a real `dispersy node` and report what it sees as the NAT lab's JSON lines.

The NAT lab (scripts/nat-lab) runs one command per host and reads JSON lines from its stdout
(the contract of scripts/ipv8_peer.py, see docs/nat-lab.md). This wrapper starts the daemon
(`dispersy node`) unchanged, with its own data directory, one declared community and the lab's
tracker, and drives it through its public REST API only:

* the event stream (`GET /api/v1/events`, server-sent events) tells it about peers and messages;
* on each newly verified peer (a walk or stumble candidate with a member) it posts every
  --send text (`POST /api/v1/communities/C/messages`); the message type is direct, with the
  community destination, so each post goes to every verified peer;
* with --send-interval it posts the texts again every so many seconds;
* its walk steps are the introduction-requests (246 and 234) the community sent
  (`GET /api/v1/communities/C/stats`, polled every second).

stdout carries only JSON lines, each with "t" (seconds since the wrapper started) and "walks":

    {"event": "started", "mid": HEX40, "address": [ip, port], "name": NAME, "pid": N, ...}
    {"event": "peer-discovered", "mid": HEX40, "address": [ip, port], "category": "walk"}
    {"event": "message-received", "sender": HEX40, "address": [ip, port], "global_time": N,
     "text": STR}
    {"event": "message-sent", "global_time": N, "text": STR, "peers": N}
    {"event": "summary", "mid": HEX40, "peers": [...], "candidates": {category: n},
     "walks": N, "sent": N, "received": N, "drops": {...}, "driver": {...}, "reason": ...}

The node's own log goes to stderr (the lab keeps it in NAME.log). The wrapper stops the node
with SIGTERM after --duration seconds, or when it gets SIGINT/SIGTERM itself.

Example (in a lab host; see scripts/ci-stage-nat-lab):

    scripts/nat-lab-node.py --dispersy target/release/dispersy --community 5a11ab...abcd \\
        --tracker 198.51.100.2:6421 --data /tmp/lab/portrestr.data --name portrestr \\
        --send 'hello from {name}' --send-interval 35 --duration 110
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

MAX_DURATION = 3600.0
WALK_BYTES = (246, 234)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dispersy", required=True, help="the dispersy binary")
    parser.add_argument("--community", required=True, help="community id, 40 hex characters")
    parser.add_argument("--tracker", action="append", default=[], metavar="HOST:PORT",
                        help="tracker address (repeatable)")
    parser.add_argument("--listen", default="0.0.0.0:7759", help="UDP address (default 0.0.0.0:7759)")
    parser.add_argument("--api", default="127.0.0.1:7760",
                        help="REST API address, loopback (default 127.0.0.1:7760)")
    parser.add_argument("--data", required=True, help="data directory (created; must be new or ours)")
    parser.add_argument("--name", default="", help="host name, for {name} in texts")
    parser.add_argument("--send", action="append", default=[], metavar="TEXT",
                        help="post TEXT when a new peer is verified (repeatable; {name}, {mid})")
    parser.add_argument("--send-interval", type=float, default=0.0,
                        help="post the texts again every this many seconds (default 0: never)")
    parser.add_argument("--duration", type=float, default=60.0,
                        help=f"seconds to run (default 60, at most {MAX_DURATION:.0f})")
    parser.add_argument("--distribution", default="direct", choices=["direct", "full-sync"],
                        help="the text message's distribution (default direct)")
    args = parser.parse_args(argv)
    try:
        if len(bytes.fromhex(args.community)) != 20:
            raise ValueError
    except ValueError:
        parser.error("--community must be 40 hex characters")
    if not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--duration must be in (0, {MAX_DURATION:.0f}]")
    if args.send_interval < 0:
        parser.error("--send-interval must not be negative")
    return args


class Reporter:
    """JSON lines on stdout, each with the time since start and the latest walk count."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.walks = 0
        self.lock = threading.Lock()

    def emit(self, event: str, **fields: object) -> None:
        with self.lock:
            record = {"event": event, **fields,
                      "t": round(time.monotonic() - self.start, 3), "walks": self.walks}
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()


def address(text: str | None) -> list | None:
    """'ip:port' or '[v6]:port' as [ip, port]."""
    if not text:
        return None
    host, _, port = text.rpartition(":")
    return [host.strip("[]"), int(port)]


class Api:
    """The node's REST API on loopback."""

    def __init__(self, addr: str) -> None:
        self.base = f"http://{addr}/api/v1"

    def get(self, path: str, timeout: float = 5.0) -> dict:
        with urllib.request.urlopen(self.base + path, timeout=timeout) as resp:
            return json.load(resp)

    def post(self, path: str, body: object, timeout: float = 5.0) -> dict:
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp)


def spec_text(community: str, distribution: str) -> str:
    # node-count is larger than the lab: a post reaches every verified peer.
    return f"""name = "nat-lab"
community = "{community}"
version = 2

[[message]]
name = "text"
byte = 1
authentication = "member"
distribution = "{distribution}"
destination = "community"
node-count = 64
payload = "text"
"""


def events(api_addr: str, community: str, out: "queue.Queue[tuple[str, dict]]",
           stop: threading.Event) -> None:
    """Reads the server-sent events of the community into `out` until the stream ends."""
    host, _, port = api_addr.rpartition(":")
    while not stop.is_set():
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=None)
            conn.request("GET", f"/api/v1/events?community={community}&types=message,peer",
                         headers={"Accept": "text/event-stream"})
            resp = conn.getresponse()
            if resp.status != 200:
                raise OSError(f"event stream: HTTP {resp.status}")
            kind, data = None, []
            while not stop.is_set():
                raw = resp.fp.readline()
                if not raw:
                    break
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if line == "":
                    if kind and data:
                        try:
                            out.put((kind, json.loads("\n".join(data))))
                        except json.JSONDecodeError:
                            pass
                    kind, data = None, []
                elif line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
        except OSError as exc:
            if stop.is_set():
                return
            print(f"nat-lab-node: {exc}; reconnecting", file=sys.stderr)
            time.sleep(0.2)


def main() -> int:  # noqa: C901, PLR0912, PLR0915
    args = parse_args(sys.argv[1:])
    reporter = Reporter()
    os.makedirs(args.data, mode=0o700, exist_ok=True)
    spec = os.path.join(args.data, "nat-lab-community.toml")
    with open(spec, "w") as handle:
        handle.write(spec_text(args.community.lower(), args.distribution))
    command = [args.dispersy, "node", "--data-dir", args.data, "--listen", args.listen,
               "--api", args.api, "--community", spec]
    for t in args.tracker:
        command += ["--tracker", t]
    node = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sys.stderr)

    stop = threading.Event()
    reason = {"value": "duration"}

    def on_signal(signum: int, _frame: object) -> None:
        reason["value"] = "signal"
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    api = Api(args.api)
    me = None
    deadline = time.monotonic() + 30
    while me is None:
        if node.poll() is not None:
            print(f"nat-lab-node: dispersy node exited with {node.returncode}", file=sys.stderr)
            return 1
        try:
            me = api.get("/node")
        except (OSError, ValueError):
            if time.monotonic() > deadline or stop.is_set():
                node.terminate()
                return 1
            time.sleep(0.1)
    mid = me["member"]
    community = args.community.lower()
    reporter.emit("started", mid=mid, address=address(args.listen), name=args.name,
                  pid=node.pid, lan=[address(a) for a in me.get("lan", [])],
                  community=community, implementation="dispersy-rust")

    inbox: queue.Queue[tuple[str, dict]] = queue.Queue()
    reader = threading.Thread(target=events, args=(args.api, community, inbox, stop), daemon=True)
    reader.start()
    texts = [t.replace("{name}", args.name).replace("{mid}", mid) for t in args.send]
    counts = {"sent": 0, "received": 0}

    def post_texts() -> None:
        for text in texts:
            try:
                made = api.post(f"/communities/{community}/messages", {"meta": "text", "payload": text})
            except (OSError, ValueError) as exc:
                print(f"nat-lab-node: posting failed: {exc}", file=sys.stderr)
                continue
            counts["sent"] += 1
            reporter.emit("message-sent", global_time=made.get("global_time"), text=text)

    def poll_walks() -> None:
        while not stop.is_set():
            try:
                stats = api.get(f"/communities/{community}/stats")
                reporter.walks = sum(t["sent"]["packets"] for t in stats["counters"]["types"]
                                     if t["byte"] in WALK_BYTES)
            except (OSError, ValueError, KeyError, TypeError):
                pass
            stop.wait(1.0)

    walker = threading.Thread(target=poll_walks, daemon=True)
    walker.start()

    known: set[str] = set()

    def handle(kind: str, data: dict, answer: bool) -> None:
        if kind == "peer":
            member = data.get("member")
            if data.get("category") in ("walk", "stumble") and member and member != mid \
                    and member not in known:
                known.add(member)
                reporter.emit("peer-discovered", mid=member, address=address(data.get("address")),
                              category=data.get("category"))
                if answer:
                    post_texts()
        elif kind == "message":
            if data.get("source") and data.get("member") and data.get("member") != mid:
                counts["received"] += 1
                reporter.emit("message-received", sender=data["member"],
                              address=address(data["source"]), global_time=data.get("global_time"),
                              text=data.get("text"))

    end = time.monotonic() + args.duration
    next_resend = time.monotonic() + args.send_interval if args.send_interval else None
    while not stop.is_set() and time.monotonic() < end:
        if node.poll() is not None:
            reason["value"] = f"node exited with {node.returncode}"
            break
        try:
            handle(*inbox.get(timeout=0.2), answer=True)
        except queue.Empty:
            pass
        if next_resend is not None and time.monotonic() >= next_resend:
            next_resend += args.send_interval
            post_texts()
    # What arrived just before the end still counts (without answering it).
    drain_until = time.monotonic() + 0.5
    while time.monotonic() < drain_until:
        try:
            handle(*inbox.get(timeout=0.1), answer=False)
        except queue.Empty:
            break

    summary: dict[str, object] = {"mid": mid, "sent": counts["sent"], "received": counts["received"],
                                  "reason": reason["value"]}
    try:
        cands = api.get(f"/communities/{community}/candidates")
        summary["peers"] = [{"mid": c.get("member"), "address": address(c.get("address")),
                             "category": c.get("category"), "tracker": c.get("tracker")}
                            for c in cands.get("candidates", [])]
        summary["candidates"] = cands.get("categories")
        stats = api.get("/stats")
        summary["drops"] = stats.get("node", {}).get("drops")
        summary["driver"] = {k: stats.get("driver", {}).get(k) for k in
                             ("received", "sent", "wakeups", "inbound_dropped", "send_errors")}
        summary["wan"] = api.get("/node").get("wan")
    except (OSError, ValueError) as exc:
        summary["error"] = str(exc)
    stop.set()
    reporter.emit("summary", **summary)
    if node.poll() is None:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(timeout=15)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
