#!/usr/bin/env python3
"""A tiny UDP hole-punching probe to validate scripts/nat-lab without any Dispersy node.

Two roles (stdlib only, any python3):

  server  the rendezvous, run in the lab's tracker namespace. Hosts register from their punching
          socket; the server answers with every registered host's public address (as the server
          saw it). It also serves mapping checks: "echo-later" asks it to send one datagram back to
          the requester's public address after a delay.

  peer    run in each lab host. Registers every second, and for the first --punch-for seconds
          sends a "punch" to every other host's registered public address every --interval
          seconds, all hosts at the same time, like a puncture. Any punch or ack that arrives is
          answered with an ack to its source address. A host "reached" another when a datagram
          from that host arrived. Optionally runs mapping checks on separate sockets.

Examples (the lab fills in the placeholders):
  nat-lab run --tracker-cmd 'python3 scripts/nat-lab-probe.py server --duration 70' -- \\
      'python3 scripts/nat-lab-probe.py peer --name {name} --server {tracker}:3478 --duration 60'

stdout carries JSON lines, the same schema as scripts/ipv8_peer.py ("mid" is the host name, and
"walks" counts punch rounds instead of introduction-requests):

  {"event": "started", "mid": NAME, "address": [ip, port], "name": NAME, "t": 0.0, "walks": 0}
  {"event": "peer-discovered", "mid": NAME, "address": [ip, port], ...}   (learnt from the server)
  {"event": "message-received", "sender": NAME, "address": [ip, port], "text": "punch"|"ack",
   "global_time": N, ...}                                                 (first one per sender)
  {"event": "message-sent", "to": NAME, "address": [ip, port], "text": "punch", ...}  (first one)
  {"event": "mapping-check", "delay_s": D, "keepalive_s": K|null, "arrived": BOOL,
   "local_port": N, "public": [ip, port], ...}
  {"event": "summary", "mid": NAME, "public": [ip, port], "received_from": {NAME: N},
   "reached": [NAME...], "sent": N, "received": N, ...}

A mapping check "D" opens a fresh socket, sends echo-later(D) to the server (the server answers
at once, so the mapping has seen a reply), stays silent, and reports whether the echo sent D
seconds later arrived. "D:K" does the same but sends a keep-alive to the server every K seconds
meanwhile. Behind a NAT whose UDP mappings expire after 30 s, "20" and "40:10" arrive and "40"
does not.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys
import time

MAX_DURATION = 900.0
MAX_HOSTS = 64
MAX_DATAGRAM = 2048


def host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def mapping_spec(value: str) -> tuple[float, float | None]:
    delay, _, keep = value.partition(":")
    return float(delay), (float(keep) if keep else None)


class Reporter:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.walks = 0

    def now(self) -> float:
        return time.monotonic() - self.start

    def emit(self, event: str, **fields: object) -> None:
        record = {"event": event, **fields, "t": round(self.now(), 3), "walks": self.walks}
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


def encode(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def decode(data: bytes) -> dict | None:
    try:
        obj = json.loads(data.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def run_server(args: argparse.Namespace) -> int:
    rep = Reporter()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.bind, args.port))
    rep.emit("started", mid="server", address=list(sock.getsockname()), name="server")
    hosts: dict[str, tuple[str, int]] = {}
    echoes: list[tuple[float, tuple[str, int], str]] = []
    deadline = time.monotonic() + args.duration
    while time.monotonic() < deadline:
        now = time.monotonic()
        due = [e for e in echoes if e[0] <= now]
        echoes = [e for e in echoes if e[0] > now]
        for _, address, token in due:
            sock.sendto(encode({"op": "echo", "token": token}), address)
        wait = min([deadline - now, 0.2] + [e[0] - now for e in echoes])
        ready, _, _ = select.select([sock], [], [], max(wait, 0.0))
        if not ready:
            continue
        data, address = sock.recvfrom(MAX_DATAGRAM)
        msg = decode(data)
        if msg is None:
            continue
        if msg.get("op") == "register" and isinstance(msg.get("name"), str):
            name = msg["name"][:64]
            if name not in hosts and len(hosts) >= MAX_HOSTS:
                continue
            if hosts.get(name) != address:
                rep.emit("peer-discovered", mid=name, address=list(address))
            hosts[name] = address
            sock.sendto(encode({"op": "peers", "you": list(address),
                                "peers": {n: list(a) for n, a in hosts.items()}}), address)
        elif msg.get("op") == "echo-later" and len(echoes) < 1000:
            delay = min(max(float(msg.get("delay", 0)), 0.0), MAX_DURATION)
            token = str(msg.get("token", ""))[:64]
            echoes.append((time.monotonic() + delay, address, token))
            sock.sendto(encode({"op": "ok", "token": token, "you": list(address)}), address)
    rep.emit("summary", mid="server", hosts={n: list(a) for n, a in hosts.items()})
    return 0


class MappingCheck:
    """One fresh socket that asks the server for a delayed echo and maybe keeps the mapping alive."""

    def __init__(self, server: tuple[str, int], bind: str, delay: float, keep: float | None,
                 index: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind, 0))
        self.server = server
        self.delay = delay
        self.keep = keep
        self.token = f"m{index}"
        self.sent_at: float | None = None
        self.confirmed_at: float | None = None
        self.last_keep = 0.0
        self.public: list | None = None
        self.arrived = False
        self.done = False

    def tick(self, now: float) -> None:
        # The request is repeated each second until the server confirms it (the server may not be
        # up yet); the idle time counts from that confirmation.
        if self.confirmed_at is None:
            if self.sent_at is None or now - self.sent_at >= 1.0:
                self.sock.sendto(encode({"op": "echo-later", "delay": self.delay,
                                         "token": self.token}), self.server)
                self.sent_at = now
        elif self.keep and not self.done and now - self.last_keep >= self.keep:
            self.sock.sendto(encode({"op": "keepalive"}), self.server)
            self.last_keep = now

    def on_datagram(self, data: bytes, now: float) -> None:
        msg = decode(data)
        if msg is None or msg.get("token") != self.token:
            return
        if msg.get("op") == "ok" and self.confirmed_at is None:
            self.confirmed_at = now
            self.last_keep = now
            self.public = msg.get("you")
        elif msg.get("op") == "echo":
            self.arrived = True

    def expired(self, now: float, grace: float) -> bool:
        return self.confirmed_at is not None and now - self.confirmed_at > self.delay + grace


def run_peer(args: argparse.Namespace) -> int:  # noqa: C901, PLR0912, PLR0915
    rep = Reporter()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.bind, args.port))
    rep.emit("started", mid=args.name, address=list(sock.getsockname()), name=args.name)
    peers: dict[str, tuple[str, int]] = {}
    received_from: dict[str, int] = {}
    first_sent: set[str] = set()
    public: list | None = None
    sent = received = 0
    checks = [MappingCheck(args.server, args.bind, d, k, i)
              for i, (d, k) in enumerate(args.mapping_check)]
    start = time.monotonic()
    deadline = start + args.duration
    next_register = next_punch = start

    while time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_register:
            sock.sendto(encode({"op": "register", "name": args.name}), args.server)
            next_register = now + 1.0
        if now >= next_punch and now - start <= args.punch_for and peers:
            rep.walks += 1
            for name, address in peers.items():
                sock.sendto(encode({"op": "punch", "from": args.name, "seq": rep.walks}), address)
                sent += 1
                if name not in first_sent:
                    first_sent.add(name)
                    rep.emit("message-sent", to=name, address=list(address), text="punch",
                             global_time=rep.walks)
            next_punch = now + args.interval
        for check in checks:
            if not check.done:
                check.tick(now - start)
                if check.expired(now - start, 3.0) or check.arrived:
                    check.done = True
                    rep.emit("mapping-check", delay_s=check.delay, keepalive_s=check.keep,
                             arrived=check.arrived, local_port=check.sock.getsockname()[1],
                             public=check.public)
        socks = [sock] + [c.sock for c in checks if not c.done]
        ready, _, _ = select.select(socks, [], [], 0.05)
        for s in ready:
            data, address = s.recvfrom(MAX_DATAGRAM)
            msg = decode(data)
            if msg is None:
                continue
            check = next((c for c in checks if c.sock is s), None)
            if check is not None:
                check.on_datagram(data, time.monotonic() - start)
                continue
            op = msg.get("op")
            if op == "peers" and address == args.server:
                you = msg.get("you")
                if you != public:
                    public = you
                for name, addr in msg.get("peers", {}).items():
                    if name == args.name or not isinstance(addr, list) or len(addr) != 2:
                        continue
                    if len(peers) >= MAX_HOSTS and name not in peers:
                        continue
                    if peers.get(name) != tuple(addr):
                        rep.emit("peer-discovered", mid=name, address=addr)
                    peers[name] = (str(addr[0]), int(addr[1]))
            elif op in ("punch", "ack") and isinstance(msg.get("from"), str):
                sender = msg["from"][:64]
                received += 1
                if sender not in received_from:
                    rep.emit("message-received", sender=sender, address=list(address), text=op,
                             global_time=int(msg.get("seq", 0)))
                if sender in received_from or len(received_from) < MAX_HOSTS:
                    received_from[sender] = received_from.get(sender, 0) + 1
                if op == "punch":
                    sock.sendto(encode({"op": "ack", "from": args.name, "seq": msg.get("seq", 0)}),
                                address)
                    sent += 1
    for check in checks:
        if not check.done:
            rep.emit("mapping-check", delay_s=check.delay, keepalive_s=check.keep,
                     arrived=check.arrived, local_port=check.sock.getsockname()[1],
                     public=check.public, incomplete=True)
    rep.emit("summary", mid=args.name, public=public, received_from=received_from,
             reached=sorted(received_from), sent=sent, received=received,
             peers={n: list(a) for n, a in peers.items()})
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="role", required=True)
    srv = sub.add_parser("server", help="rendezvous server (tracker namespace)")
    srv.add_argument("--bind", default="0.0.0.0")
    srv.add_argument("--port", type=int, default=3478)
    srv.add_argument("--duration", type=float, default=90.0)
    peer = sub.add_parser("peer", help="punching host")
    peer.add_argument("--name", required=True)
    peer.add_argument("--server", type=host_port, required=True, metavar="HOST:PORT")
    peer.add_argument("--bind", default="0.0.0.0")
    peer.add_argument("--port", type=int, default=4000)
    peer.add_argument("--duration", type=float, default=60.0)
    peer.add_argument("--punch-for", type=float, default=20.0,
                      help="seconds during which punches are sent (default 20)")
    peer.add_argument("--interval", type=float, default=0.5,
                      help="seconds between punch rounds (default 0.5)")
    peer.add_argument("--mapping-check", type=mapping_spec, action="append", default=[],
                      metavar="DELAY[:KEEPALIVE]", help="run a mapping check (repeatable)")
    args = parser.parse_args()
    if not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--duration must be in (0, {MAX_DURATION:.0f}]")
    if args.role == "peer" and args.interval <= 0:
        parser.error("--interval must be positive")
    return run_server(args) if args.role == "server" else run_peer(args)


if __name__ == "__main__":
    sys.exit(main())
