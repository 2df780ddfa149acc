#!/usr/bin/env python3
"""Cold and warm client runs, tuf-oci vs python-tuf's ngclient, same repository.

usage: bench/compare_client.py [--targets N] [--runs R] [--tuf-oci PATH]

Builds an N-target repository (default 10,000; ed25519, consistent snapshots,
100-byte targets) with python-tuf, serves it over loopback HTTP (one connection
per request), then times in one run, as separate processes (start-up included):
  cold: init from 1.root.json, refresh, download one target
  warm: refresh again with nothing changed
and counts requests and bytes served. Prints medians and ratios.
Run it with the project's venv: .venv/bin/python bench/compare_client.py
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

PY_CLIENT = r"""
import sys
from tuf.ngclient import Updater
meta_dir, url, target, out_dir = sys.argv[1:5]
u = Updater(meta_dir, url + "/metadata/", out_dir, url + "/targets/", bootstrap=None)
u.refresh()
if target != "-":
    info = u.get_targetinfo(target)
    assert info is not None, target
    u.download_target(info)
"""


def build_repo(root: Path, n: int) -> str:
    """Write an n-target repository; return one target path."""
    meta, tdir = root / "metadata", root / "targets"
    meta.mkdir(parents=True)
    tdir.mkdir()
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=30)
    signers = {r: CryptoSigner.generate_ed25519() for r in ("root", "targets", "snapshot", "timestamp")}
    rootmd = Metadata(Root(expires=expires, consistent_snapshot=True))
    for role, s in signers.items():
        rootmd.signed.add_key(s.public_key, role)
    targets = Metadata(Targets(expires=expires))
    for i in range(n):
        data = f"target {i:06d} ".encode().ljust(100, b".")
        path = f"files/target-{i:06d}.txt"
        targets.signed.targets[path] = TargetFile.from_data(path, data, ["sha256"])
        if i == n // 2:
            sha = hashlib.sha256(data).hexdigest()
            (tdir / "files").mkdir(exist_ok=True)
            (tdir / "files" / f"{sha}.target-{i:06d}.txt").write_bytes(data)
            chosen = path
    ser = JSONSerializer(compact=True)
    targets.sign(signers["targets"])
    tbytes = targets.to_bytes(ser)
    (meta / "1.targets.json").write_bytes(tbytes)
    snap = Metadata(Snapshot(expires=expires))
    snap.signed.meta["targets.json"] = MetaFile(1)
    snap.sign(signers["snapshot"])
    sbytes = snap.to_bytes(ser)
    (meta / "1.snapshot.json").write_bytes(sbytes)
    ts = Metadata(Timestamp(expires=expires))
    ts.signed.snapshot_meta = MetaFile(1)
    ts.sign(signers["timestamp"])
    (meta / "timestamp.json").write_bytes(ts.to_bytes(ser))
    rootmd.sign(signers["root"])
    (meta / "1.root.json").write_bytes(rootmd.to_bytes(ser))
    return chosen


class Counter:
    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        self.lock = threading.Lock()


def serve(directory: Path, counter: Counter) -> ThreadingHTTPServer:
    class Handler(SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one connection per request

        def log_message(self, *args: object) -> None:
            pass

        def copyfile(self, source, outputfile) -> None:  # type: ignore[override]
            data = source.read()
            with counter.lock:
                counter.bytes += len(data)
            outputfile.write(data)

        def send_head(self):  # type: ignore[override]
            with counter.lock:
                counter.requests += 1
            return super().send_head()

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(name: str, cold, warm, runs: int, counter: Counter) -> dict:
    cold_t, warm_t = [], []
    for _ in range(runs):
        before = (counter.requests, counter.bytes)
        cold_t.append(cold())
        cold_rb = (counter.requests - before[0], counter.bytes - before[1])
        before = (counter.requests, counter.bytes)
        warm_t.append(warm())
        warm_rb = (counter.requests - before[0], counter.bytes - before[1])
    return {"name": name, "cold": statistics.median(cold_t), "warm": statistics.median(warm_t),
            "cold_rb": cold_rb, "warm_rb": warm_rb, "cold_range": (min(cold_t), max(cold_t))}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tuf-oci", default=str(Path(__file__).resolve().parent.parent / "target/release/tuf-oci"))
    args = ap.parse_args()
    if not Path(args.tuf_oci).exists():
        print(f"{args.tuf_oci} not found: cargo build --release -p tuf-oci-cli", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="tuf-oci-bench-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    try:
        target = build_repo(work / "repo", args.targets)
        counter = Counter()
        server = serve(work / "repo", counter)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        root = work / "repo/metadata/1.root.json"
        client_py = work / "client.py"
        client_py.write_text(PY_CLIENT)

        def fresh(tag: str) -> Path:
            d = work / tag
            shutil.rmtree(d, ignore_errors=True)
            (d / "metadata").mkdir(parents=True)
            (d / "targets").mkdir()
            return d

        state = {}

        def ours_cold() -> float:
            d = state["ours"] = fresh("ours")
            subprocess.run([args.tuf_oci, "client", "--metadata-dir", d / "metadata", "init", root], check=True)
            return run([args.tuf_oci, "client", "--metadata-url", f"{url}/metadata", "--metadata-dir",
                        d / "metadata", "--target-name", target, "--target-dir", d / "targets",
                        "--target-base-url", f"{url}/targets", "download"])

        def ours_warm() -> float:
            d = state["ours"]
            return run([args.tuf_oci, "client", "--metadata-url", f"{url}/metadata", "--metadata-dir",
                        d / "metadata", "refresh"])

        def py_cold() -> float:
            d = state["py"] = fresh("py")
            shutil.copy(root, d / "metadata/root.json")
            return run([sys.executable, client_py, d / "metadata", url, target, d / "targets"])

        def py_warm() -> float:
            d = state["py"]
            return run([sys.executable, client_py, d / "metadata", url, "-", d / "targets"])

        results = [measure("tuf-oci", ours_cold, ours_warm, args.runs, counter),
                   measure("python-tuf ngclient", py_cold, py_warm, args.runs, counter)]
        server.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{args.targets} targets, median of {args.runs} runs, loopback HTTP")
    print(f"{'client':<22}{'cold s':>9}{'(min-max)':>16}{'req':>5}{'bytes':>11}{'warm s':>9}{'req':>5}{'bytes':>8}")
    for r in results:
        lo, hi = r["cold_range"]
        print(f"{r['name']:<22}{r['cold']:>9.3f}{f'({lo:.3f}-{hi:.3f})':>16}{r['cold_rb'][0]:>5}{r['cold_rb'][1]:>11}"
              f"{r['warm']:>9.3f}{r['warm_rb'][0]:>5}{r['warm_rb'][1]:>8}")
    ours, py = results
    print(f"cold: tuf-oci is {py['cold'] / ours['cold']:.1f}x faster than python-tuf; "
          f"warm: {py['warm'] / ours['warm']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
