#!/usr/bin/env python3
"""A py-ipv8 3.2.1 peer for interop tests, reporting what it sees as JSON lines on stdout.

Run it with the venv's python (see scripts/ipv8-venv):

    PY=$(scripts/ipv8-venv)
    "$PY" scripts/ipv8_peer.py --community 45347ad51401af75f26d792de78c4b943622e436 \
        --port 9201 --duration 10 --send hello
    "$PY" scripts/ipv8_peer.py --community 45347ad5... --port 9202 \
        --bootstrap 127.0.0.1:9201 --duration 10 --send world

The community is a plain py-ipv8 ``Community`` subclass (prefix version byte 0x02) with the normal
RandomWalk walker. Bootstrapping is a plain walk (an introduction-request) to each --bootstrap
address, never py-ipv8's DispersyBootstrapper, whose addresses are blacklisted and so never become
peers. It adds one signed application message, msg id 1:

    prefix | 01 | varlenH(public key) | global_time u64 | varlenH(text) | signature

stdout carries only JSON lines (one object each, key "event" first); logs go to stderr. Every
event has "t", the seconds since the peer started, and "walks", the number of
introduction-requests it has sent so far (its walk steps):

    {"event": "started", "mid": HEX40, "address": [ip, port], "lan": [ip, port],
     "community": HEX40, "public_key": HEX, "name": NAME, "pid": N, "t": 0.0, "walks": 0}
    {"event": "peer-discovered", "mid": HEX40, "address": [ip, port], "t": .., "walks": ..}
    {"event": "message-received", "sender": HEX40, "address": [ip, port], "global_time": N,
     "text": STR, "t": .., "walks": ..}
    {"event": "message-sent", "to": HEX40, "address": [ip, port], "global_time": N, "text": STR, ...}
    {"event": "summary", "mid": HEX40, "peers": [{"mid": HEX40, "address": [ip, port]}],
     "walks": N, "sent": N, "received": N, "received_from": {HEX40: N}, "wan": [ip, port],
     "reason": "duration"|"signal", "t": .., ...}

"text" is the payload decoded as UTF-8 (invalid bytes replaced); "text_hex" is added when the
payload is not valid UTF-8. The peer always exits by itself after --duration seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time

COMMUNITY_VERSION = b"\x02"
TEXT_MSG_ID = 1
MAX_DURATION = 3600.0
MAX_SENDS_PER_PEER = 10_000
MAX_TEXT_BYTES = 1_200


def host_port(value: str) -> tuple[str, int]:
    """Parse HOST:PORT (IPv4 only: py-ipv8 3.2.1 bootstraps over IPv4 here)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    try:
        port_n = int(port)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad port in {value!r}") from exc
    if not 0 < port_n < 65536:
        raise argparse.ArgumentTypeError(f"port out of range in {value!r}")
    return host, port_n


def community_id(value: str) -> bytes:
    """Parse a 40-hex-character community id."""
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("community id must be hex") from exc
    if len(raw) != 20:
        raise argparse.ArgumentTypeError("community id must be exactly 40 hex characters")
    return raw


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--community", type=community_id, required=True,
                        help="community id, 40 hex characters")
    parser.add_argument("--port", type=int, default=0,
                        help="UDP port to bind (default 0: any). The peer exits with status 3 if the "
                             "port is taken (py-ipv8 itself would silently move to another port)")
    parser.add_argument("--bind", default="127.0.0.1",
                        help="IPv4 address to bind (default 127.0.0.1). With a specific address the "
                             "peer advertises that address as its LAN address; with 0.0.0.0 it "
                             "uses py-ipv8's own guess from the interface list (use 0.0.0.0 in "
                             "network namespaces)")
    parser.add_argument("--lan-ip", default=None,
                        help="LAN IP to advertise instead of py-ipv8's guess (default: --bind "
                             "unless it is 0.0.0.0)")
    parser.add_argument("--bootstrap", type=host_port, action="append", default=[],
                        metavar="HOST:PORT",
                        help="walk to this address while the peer has no peers (repeatable)")
    parser.add_argument("--bootstrap-interval", type=float, default=2.0,
                        help="seconds between bootstrap walks while without peers (default 2)")
    parser.add_argument("--key-file", default=None,
                        help="private key file (py-ipv8's raw 'LibNaCLSK:' blob, 74 bytes); "
                             "created with a fresh curve25519 key if missing")
    parser.add_argument("--send", action="append", default=[], metavar="TEXT",
                        help="send TEXT to every peer as soon as it is discovered (repeatable). "
                             "'{name}' and '{mid}' in TEXT are replaced by --name and own mid")
    parser.add_argument("--send-interval", type=float, default=0.0,
                        help="also re-send every --send text to every peer each this many "
                             "seconds (default 0: once per peer)")
    parser.add_argument("--duration", type=float, default=30.0,
                        help=f"seconds to run before exiting (default 30, at most {MAX_DURATION:.0f})")
    parser.add_argument("--tracker", action="store_true",
                        help="tracker mode: do not walk or bootstrap, only answer "
                             "introduction-requests and introduce peers to each other "
                             "(max_peers raised to 1000)")
    parser.add_argument("--max-peers", type=int, default=None,
                        help="py-ipv8 max_peers (default 30, 1000 with --tracker)")
    parser.add_argument("--walk-target", type=int, default=20,
                        help="RandomWalk stops walking at this many peers (default 20)")
    parser.add_argument("--name", default="",
                        help="free-form name copied into the started event")
    parser.add_argument("--log-level", default="WARNING",
                        help="py-ipv8 log level on stderr (default WARNING)")
    args = parser.parse_args(argv)
    if not 0 <= args.port < 65536:
        parser.error("--port out of range")
    if not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--duration must be in (0, {MAX_DURATION:.0f}]")
    if args.send_interval < 0 or args.bootstrap_interval <= 0:
        parser.error("intervals must be positive")
    for text in args.send:
        if len(text.encode()) > MAX_TEXT_BYTES:
            parser.error(f"--send text longer than {MAX_TEXT_BYTES} bytes")
    if args.tracker and args.send:
        parser.error("--tracker does not send messages")
    return args


class Reporter:
    """Writes JSON lines to stdout; every event carries the time since start and the walk count."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.walks = 0

    def emit(self, event: str, **fields: object) -> None:
        record = {"event": event, **fields,
                  "t": round(time.monotonic() - self.start, 3), "walks": self.walks}
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


def addr(address: object) -> list:
    """An address tuple as a JSON list [ip, port]."""
    return [str(address[0]), int(address[1])]  # type: ignore[index]


def load_or_create_key(path: str | None):  # noqa: ANN201
    from ipv8.keyvault.crypto import default_eccrypto

    if path is None:
        return default_eccrypto.generate_key("curve25519")
    if os.path.exists(path):
        with open(path, "rb") as handle:
            return default_eccrypto.key_from_private_bin(handle.read())
    key = default_eccrypto.generate_key("curve25519")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.key_to_bin())
    return key


def build(args: argparse.Namespace, reporter: Reporter):  # noqa: ANN201, C901
    """Define the py-ipv8 classes (imports deferred so --help works without the venv)."""
    from ipv8.bootstrapping.bootstrapper_interface import Bootstrapper
    from ipv8.community import Community, CommunitySettings
    from ipv8.lazy_community import lazy_wrapper
    from ipv8.messaging.lazy_payload import VariablePayload, vp_compile
    from ipv8.messaging.payload_headers import GlobalTimeDistributionPayload
    from ipv8.peerdiscovery.discovery import RandomWalk
    from ipv8.peerdiscovery.network import Network
    from ipv8.peer import Peer
    from ipv8.messaging.interfaces.dispatcher.endpoint import DispatcherEndpoint

    @vp_compile
    class TextPayload(VariablePayload):
        """Application message: one u16-length-prefixed byte string (msg id 1)."""

        msg_id = TEXT_MSG_ID
        format_list = ["varlenH"]
        names = ["text"]

    class DirectBootstrapper(Bootstrapper):
        """Walks to fixed addresses, without blacklisting them (unlike DispersyBootstrapper)."""

        def __init__(self, addresses: list[tuple[str, int]], interval: float) -> None:
            super().__init__()
            self.addresses = addresses
            self.interval = interval
            self.last = 0.0

        async def initialize(self, overlay: Community) -> bool:
            self.initialized = True
            return True

        async def get_addresses(self, overlay: Community, timeout: float) -> list[tuple[str, int]]:
            now = time.monotonic()
            if now - self.last < self.interval:
                return []
            self.last = now
            return list(self.addresses)

        def keep_alive(self, overlay: Community) -> None:
            for address in self.addresses:
                overlay.walk_to(address)

        def blacklist(self) -> list[tuple[str, int]]:
            return []

        def unload(self) -> None:
            pass

    class InteropCommunity(Community):
        """A plain Community with one signed text message."""

        community_id = args.community
        version = COMMUNITY_VERSION

        def __init__(self, settings: CommunitySettings) -> None:
            super().__init__(settings)
            self.add_message_handler(TextPayload, self.on_text)
            self.sent = 0
            self.received = 0
            self.received_from: dict[str, int] = {}

        # Count the walk steps: every introduction-request goes through one of these two.
        def walk_to(self, address) -> None:  # noqa: ANN001
            reporter.walks += 1
            super().walk_to(address)

        def send_introduction_request(self, peer) -> None:  # noqa: ANN001
            reporter.walks += 1
            super().send_introduction_request(peer)

        def send_text(self, peer, text: str) -> None:  # noqa: ANN001
            gt = self.claim_global_time()
            self.ez_send(peer, GlobalTimeDistributionPayload(gt), TextPayload(text.encode()))
            self.sent += 1
            reporter.emit("message-sent", to=peer.mid.hex(), address=addr(peer.address),
                          global_time=gt, text=text)

        @lazy_wrapper(GlobalTimeDistributionPayload, TextPayload)
        def on_text(self, peer, dist, payload) -> None:  # noqa: ANN001
            raw = payload.text
            text = raw.decode("utf-8", errors="replace")
            fields: dict[str, object] = {}
            if text.encode("utf-8", errors="replace") != raw:
                fields["text_hex"] = raw.hex()
            sender = peer.mid.hex()
            self.received += 1
            if sender in self.received_from or len(self.received_from) < 10_000:
                self.received_from[sender] = self.received_from.get(sender, 0) + 1
            reporter.emit("message-received", sender=sender, address=addr(peer.address),
                          global_time=dist.global_time, text=text, **fields)

    return InteropCommunity, CommunitySettings, DirectBootstrapper, RandomWalk, Network, Peer, \
        DispatcherEndpoint


async def run(args: argparse.Namespace) -> int:  # noqa: C901, PLR0915
    import logging

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    reporter = Reporter()
    (InteropCommunity, CommunitySettings, DirectBootstrapper, RandomWalk, Network, Peer,
     DispatcherEndpoint) = build(args, reporter)

    key = load_or_create_key(args.key_file)
    my_peer = Peer(key)
    endpoint = DispatcherEndpoint(["UDPIPv4"], UDPIPv4={"port": args.port, "ip": args.bind})
    await endpoint.open()
    bound = endpoint.get_address()
    if args.port and bound[1] != args.port:
        print(f"ipv8_peer: port {args.port} is taken (py-ipv8 moved to {bound[1]})", file=sys.stderr)
        await endpoint.close()
        return 3

    max_peers = args.max_peers if args.max_peers is not None else (1000 if args.tracker else 30)
    settings = CommunitySettings(my_peer=my_peer, endpoint=endpoint, network=Network(),
                                 max_peers=max_peers)
    community = InteropCommunity(settings)
    lan_ip = args.lan_ip or (args.bind if args.bind != "0.0.0.0" else None)
    if lan_ip is not None:
        community.my_estimated_lan = (lan_ip, bound[1])
    if args.bootstrap and not args.tracker:
        community.bootstrappers.append(DirectBootstrapper(args.bootstrap, args.bootstrap_interval))
    walker = None if args.tracker else RandomWalk(community, timeout=3.0)

    reporter.emit("started", mid=my_peer.mid.hex(), address=addr(bound),
                  lan=addr(community.my_estimated_lan), community=args.community.hex(),
                  public_key=key.pub().key_to_bin().hex(), name=args.name, pid=os.getpid(),
                  tracker=args.tracker)

    stop = asyncio.Event()
    reason = {"value": "duration"}

    def on_signal(signame: str) -> None:
        reason["value"] = "signal"
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)

    texts = [t.replace("{name}", args.name).replace("{mid}", my_peer.mid.hex()) for t in args.send]
    known: dict[bytes, object] = {}
    sends_per_peer: dict[bytes, int] = {}

    def send_all(peer) -> None:  # noqa: ANN001
        for text in texts:
            if sends_per_peer.get(peer.mid, 0) >= MAX_SENDS_PER_PEER:
                return
            sends_per_peer[peer.mid] = sends_per_peer.get(peer.mid, 0) + 1
            community.send_text(peer, text)

    async def walk_loop() -> None:
        # The walker tick of IPv8.on_tick: 0.5 s, RandomWalk until the target is met.
        while True:
            if walker is not None and len(community.get_peers()) < args.walk_target:
                try:
                    walker.take_step()
                except Exception:  # noqa: BLE001 (py-ipv8 wraps take_step the same way)
                    logging.exception("walk step failed")
            await asyncio.sleep(0.5)

    async def watch_loop() -> None:
        last_resend = time.monotonic()
        while True:
            for peer in community.get_peers():
                if peer.mid not in known:
                    known[peer.mid] = peer
                    reporter.emit("peer-discovered", mid=peer.mid.hex(), address=addr(peer.address))
                    send_all(peer)
            if args.send_interval and time.monotonic() - last_resend >= args.send_interval:
                last_resend = time.monotonic()
                for peer in community.get_peers():
                    send_all(peer)
            await asyncio.sleep(0.1)

    tasks = [asyncio.ensure_future(walk_loop()), asyncio.ensure_future(watch_loop())]
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.duration)
    except asyncio.TimeoutError:
        pass
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    peers = [{"mid": p.mid.hex(), "address": addr(p.address)} for p in community.get_peers()]
    reporter.emit("summary", mid=my_peer.mid.hex(), peers=peers, sent=community.sent,
                  received=community.received, received_from=community.received_from,
                  wan=addr(community.my_estimated_wan), reason=reason["value"])
    try:
        await asyncio.wait_for(community.unload(), timeout=5)
        await asyncio.wait_for(endpoint.close(), timeout=5)
    except Exception:  # noqa: BLE001
        logging.exception("unload failed")
    return 0


def main() -> int:
    args = parse_args(sys.argv[1:])
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
