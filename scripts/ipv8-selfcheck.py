#!/usr/bin/env python3
"""Self-check of scripts/ipv8_peer.py: py-ipv8 peers on loopback find each other and exchange messages.

Run with the venv's python (scripts/ipv8-venv prints it); the peers are started with the same
interpreter. No pytest: each scenario prints PASS/FAIL lines and the last line is
"selfcheck: N passed, N failed". Exit status 0 only if every scenario passed.

Scenarios:
  direct      A and B; B bootstraps to A. Both become peers and each receives the other's text.
  introduce   I, A, B; A and B bootstrap only to I (a plain peer). I introduces them: A and B
              become peers of each other and exchange texts directly.
  tracker     the same with I in --tracker mode (answers and introduces, never walks).

Every peer binds 127.0.0.1 and is started on port 0 (the introducer first; its started event
gives the port the others bootstrap to), so the scenarios run in parallel and parallel runs of
the check do not collide.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "ipv8_peer.py")
COMMUNITY = "45347ad51401af75f26d792de78c4b943622e436"


class Proc:
    """One ipv8_peer.py process whose JSON lines are collected by a reader thread."""

    def __init__(self, name: str, args: list[str], log_dir: str | None) -> None:
        self.name = name
        self.events: list[dict] = []
        self.started = threading.Event()
        stderr = subprocess.DEVNULL
        if log_dir:
            stderr = open(os.path.join(log_dir, f"{name}.log"), "w")  # noqa: SIM115
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, PEER, "--community", COMMUNITY, "--name", name, *args],
            stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            self.events.append(event)
            if event.get("event") == "started":
                self.started.set()

    def first(self, kind: str) -> dict | None:
        return next((e for e in self.events if e.get("event") == kind), None)

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e.get("event") == kind]

    def wait(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.thread.join(timeout=2)
        return code


def start_introducer(name: str, extra: list[str], duration: float, log_dir: str | None) -> Proc:
    proc = Proc(name, ["--port", "0", "--duration", str(duration), *extra], log_dir)
    if not proc.started.wait(timeout=20):
        proc.proc.kill()
        raise RuntimeError(f"{name} did not start")
    return proc


def port_of(proc: Proc) -> int:
    started = proc.first("started")
    assert started is not None
    return int(started["address"][1])


def mid_of(proc: Proc) -> str:
    started = proc.first("started")
    return "" if started is None else str(started["mid"])


def exchanged(a: Proc, b: Proc) -> list[str]:
    """Problems (empty = fine) with A and B being peers that received each other's text."""
    problems = []
    for x, y in ((a, b), (b, a)):
        if not any(e["mid"] == mid_of(y) for e in x.of("peer-discovered")):
            problems.append(f"{x.name} never discovered {y.name}")
        texts = [e["text"] for e in x.of("message-received") if e["sender"] == mid_of(y)]
        if f"hello from {y.name}" not in texts:
            problems.append(f"{x.name} did not receive the text of {y.name} (got {texts})")
        if x.first("summary") is None:
            problems.append(f"{x.name} printed no summary")
    return problems


def scenario_direct(duration: float, log_dir: str | None) -> list[str]:
    a = start_introducer("A", ["--send", "hello from {name}"], duration, log_dir)
    b = Proc("B", ["--port", "0", "--duration", str(duration), "--send", "hello from {name}",
                   "--bootstrap", f"127.0.0.1:{port_of(a)}"], log_dir)
    codes = [a.wait(duration + 15), b.wait(duration + 15)]
    problems = exchanged(a, b)
    problems += [f"exit status {c}" for c in codes if c != 0]
    return problems


def scenario_introduce(duration: float, log_dir: str | None, tracker: bool) -> list[str]:
    extra = ["--tracker"] if tracker else []
    i = start_introducer("I", extra, duration + 2, log_dir)
    boot = ["--bootstrap", f"127.0.0.1:{port_of(i)}"]
    a = Proc("A", ["--port", "0", "--duration", str(duration), "--send", "hello from {name}", *boot],
             log_dir)
    b = Proc("B", ["--port", "0", "--duration", str(duration), "--send", "hello from {name}", *boot],
             log_dir)
    codes = [p.wait(duration + 20) for p in (a, b, i)]
    problems = exchanged(a, b)
    for x in (a, b):
        if not any(e["mid"] == mid_of(i) for e in x.of("peer-discovered")):
            problems.append(f"{x.name} never discovered the introducer")
    problems += [f"exit status {c}" for c in codes if c != 0]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0,
                        help="seconds each peer runs (default 8)")
    parser.add_argument("--log-dir", default=None, help="keep each peer's stderr here")
    parser.add_argument("--only", choices=["direct", "introduce", "tracker"], action="append",
                        help="run only these scenarios (repeatable)")
    args = parser.parse_args()
    if args.log_dir:
        os.makedirs(args.log_dir, exist_ok=True)

    scenarios = {
        "direct": lambda: scenario_direct(args.duration, args.log_dir),
        "introduce": lambda: scenario_introduce(args.duration, args.log_dir, tracker=False),
        "tracker": lambda: scenario_introduce(args.duration, args.log_dir, tracker=True),
    }
    chosen = [n for n in scenarios if not args.only or n in args.only]

    def timed(name: str) -> tuple[list[str], float]:
        began = time.monotonic()
        try:
            problems = scenarios[name]()
        except Exception as exc:  # noqa: BLE001
            problems = [f"{type(exc).__name__}: {exc}"]
        return problems, time.monotonic() - began

    # The scenarios use disjoint ephemeral ports, so they run side by side.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(chosen) or 1) as pool:
        results = dict(zip(chosen, pool.map(timed, chosen)))
    passed = failed = 0
    for name in chosen:
        problems, took = results[name]
        if problems:
            failed += 1
            print(f"FAIL {name} ({took:.1f} s)")
            for problem in problems:
                print(f"     {problem}")
        else:
            passed += 1
            print(f"PASS {name} ({took:.1f} s)")
    print(f"selfcheck: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
