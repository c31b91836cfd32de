#!/usr/bin/env python3
"""Capture real py-ipv8 3.2.1 walker and application traffic on loopback as JSON lines.

Run as root with the venv's python (tcpdump must be installed: apt-get install tcpdump):

    PY=$(scripts/ipv8-venv)
    "$PY" scripts/ipv8-capture.py --out crates/dispersy/tests/vectors/ipv8-capture.jsonl

What it does: starts three scripts/ipv8_peer.py peers on 127.0.0.1 (I, then B bootstrapping to I,
then A bootstrapping to I), records the UDP traffic between them with tcpdump on `lo`, and keeps
the packets from the first one up to the one that completes the set of message ids
246 245 250 249 234 233 232 231 1 and a text each way between the introduced pair A and B
(at most --max-packets). Sequence in a typical run:

    B->I 246, I->B 245 (flag 0x10: I speaks new style), B->I 234, I->B 233 ...
    A->I 246, I->A 245 introducing B, I->B 250, B->A 249, A->B 234, B->A 233, A<->B msg 1,
    A->I 234, I->A 233, I->B 232, B->A 231 ...

Output: the first line is {"kind": "meta", ...} (versions, community id, each peer's name, port,
mid and public key hex); each further line is one datagram:

    {"kind": "packet", "n": 0, "t": 0.0, "dir": "B->I", "src": "127.0.0.1:9402",
     "dst": "127.0.0.1:9401", "msg_id": 246, "msg": "introduction-request", "len": 192,
     "hex": "0002..."}

"t" is seconds since the first kept packet. Peers advertise LAN 127.0.0.1 (ipv8_peer.py sets
my_estimated_lan to the bound address; a stock py-ipv8 would put its host-interface guess there).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "ipv8_peer.py")
COMMUNITY = "45347ad51401af75f26d792de78c4b943622e436"
WANTED = {246, 245, 250, 249, 234, 233, 232, 231, 1}
NAMES = {
    246: "introduction-request", 245: "introduction-response", 250: "puncture-request",
    249: "puncture", 234: "new-introduction-request", 233: "new-introduction-response",
    232: "new-puncture-request", 231: "new-puncture", 1: "text",
}


def read_pcap(path: str) -> list[tuple[float, str, int, str, int, bytes]]:
    """(time, src ip, src port, dst ip, dst port, payload) for each UDP/IPv4 frame of a pcap file."""
    with open(path, "rb") as handle:
        data = handle.read()
    if len(data) < 24:
        return []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError("not a pcap file (pcapng is not supported)")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    link_len = {1: 14, 113: 16, 276: 20, 0: 4, 101: 0}.get(linktype)
    if link_len is None:
        raise ValueError(f"unsupported link type {linktype}")
    out = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ip = frame[link_len:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        udp = ip[ihl:total]
        if len(udp) < 8:
            continue
        sport, dport, ulen = struct.unpack(">HHH", udp[:6])
        src = ".".join(str(b) for b in ip[12:16])
        dst = ".".join(str(b) for b in ip[16:20])
        t = sec + frac / (1e9 if nano else 1e6)
        out.append((t, src, sport, dst, dport, udp[8:ulen]))
    return out


def signature_ok(packet: bytes) -> bool:
    """True for unsigned packets (250, 232) and for signed ones whose signature verifies."""
    from ipv8.keyvault.crypto import default_eccrypto

    if packet[22] in (250, 232):
        return True
    key_len = struct.unpack(">H", packet[23:25])[0]
    key = default_eccrypto.key_from_public_bin(packet[25:25 + key_len])
    sig_len = default_eccrypto.get_signature_length(key)
    return default_eccrypto.is_valid_signature(key, packet[:-sig_len], packet[-sig_len:])


def start_peer(py: str, name: str, port: int, duration: float, boot: int | None,
               log) -> subprocess.Popen:  # noqa: ANN001
    args = [py, PEER, "--community", COMMUNITY, "--name", name, "--port", str(port),
            "--duration", str(duration), "--send", f"hello from {name}"]
    if boot:
        args += ["--bootstrap", f"127.0.0.1:{boot}"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)  # noqa: S603


def main() -> int:  # noqa: C901, PLR0915
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="-", help="output file (default stdout)")
    parser.add_argument("--base-port", type=int, default=9401,
                        help="ports used: BASE (I), BASE+1 (B), BASE+2 (A); default 9401")
    parser.add_argument("--max-packets", type=int, default=80,
                        help="keep at most this many packets (default 80)")
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds the last peer runs (default 5)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("ipv8-capture: tcpdump needs root", file=sys.stderr)
        return 2
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        print("ipv8-capture: tcpdump is missing: apt-get install tcpdump", file=sys.stderr)
        return 2

    ports = {"I": args.base_port, "B": args.base_port + 1, "A": args.base_port + 2}
    by_port = {p: n for n, p in ports.items()}
    tmp = tempfile.mkdtemp(prefix="ipv8-capture-")
    pcap = os.path.join(tmp, "lo.pcap")
    filt = "udp and (" + " or ".join(f"port {p}" for p in ports.values()) + ")"
    dump = subprocess.Popen([tcpdump, "-i", "lo", "-U", "--immediate-mode", "-s", "0",  # noqa: S603
                             "-w", pcap, filt], stderr=subprocess.DEVNULL)
    peers: dict[str, subprocess.Popen] = {}
    try:
        time.sleep(1.0)  # let tcpdump attach
        with open(os.path.join(tmp, "peers.log"), "w") as log:
            peers["I"] = start_peer(sys.executable, "I", ports["I"], args.duration + 3, None, log)
            time.sleep(0.5)
            peers["B"] = start_peer(sys.executable, "B", ports["B"], args.duration + 2, ports["I"],
                                    log)
            time.sleep(1.5)
            peers["A"] = start_peer(sys.executable, "A", ports["A"], args.duration, ports["I"], log)
            outputs = {}
            for name, proc in peers.items():
                out, _ = proc.communicate(timeout=args.duration + 20)
                outputs[name] = [json.loads(line) for line in out.splitlines() if line.strip()]
                if proc.returncode != 0:
                    print(f"ipv8-capture: peer {name} exited {proc.returncode}", file=sys.stderr)
                    return 1
    finally:
        for proc in peers.values():
            if proc.poll() is None:
                proc.kill()
        time.sleep(0.5)
        dump.send_signal(signal.SIGINT)
        try:
            dump.wait(timeout=10)
        except subprocess.TimeoutExpired:
            dump.kill()

    frames = read_pcap(pcap)
    shutil.rmtree(tmp, ignore_errors=True)
    kept = []
    seen: set[int] = set()
    texts: set[tuple] = set()
    for frame in frames:
        t, src, sport, dst, dport, payload = frame
        if len(payload) < 23 or payload[2:22] != bytes.fromhex(COMMUNITY):
            continue
        kept.append(frame)
        seen.add(payload[22])
        if payload[22] == 1:
            texts.add((by_port.get(sport), by_port.get(dport)))
        if (WANTED <= seen and {("A", "B"), ("B", "A")} <= texts) or len(kept) >= args.max_packets:
            break
    missing = WANTED - seen
    if not {("A", "B"), ("B", "A")} <= texts:
        print("ipv8-capture: the introduced pair A, B exchanged no texts", file=sys.stderr)
        missing.add(1)
    if missing:
        print(f"ipv8-capture: message ids not captured: {sorted(missing)}", file=sys.stderr)

    bad = [n for n, frame in enumerate(kept) if not signature_ok(frame[5])]
    if bad:
        print(f"ipv8-capture: packets with a bad signature: {bad}", file=sys.stderr)
        return 1

    meta_peers = {}
    for name, events in outputs.items():
        started = next(e for e in events if e["event"] == "started")
        meta_peers[name] = {"port": ports[name], "mid": started["mid"],
                            "public_key": started["public_key"]}
    lines = [json.dumps({
        "kind": "meta", "pyipv8": "3.2.1", "ipv8_rust_tunnels": "0.1.53",
        "community": COMMUNITY, "peers": meta_peers,
        "note": "py-ipv8 peers from scripts/ipv8_peer.py on 127.0.0.1; LAN address advertised as "
                "127.0.0.1; text message = msg id 1, GlobalTimeDistributionPayload + varlenH",
        "missing_msg_ids": sorted(missing),
    })]
    t0 = kept[0][0] if kept else 0.0
    for n, (t, src, sport, dst, dport, payload) in enumerate(kept):
        msg_id = payload[22]
        lines.append(json.dumps({
            "kind": "packet", "n": n, "t": round(t - t0, 6),
            "dir": f"{by_port.get(sport, '?')}->{by_port.get(dport, '?')}",
            "src": f"{src}:{sport}", "dst": f"{dst}:{dport}", "msg_id": msg_id,
            "msg": NAMES.get(msg_id, "other"), "len": len(payload), "hex": payload.hex(),
        }))
    text = "\n".join(lines) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as handle:
            handle.write(text)
        print(f"ipv8-capture: {len(kept)} packets -> {args.out}", file=sys.stderr)
    return 0 if not missing else 1


if __name__ == "__main__":
    sys.exit(main())
