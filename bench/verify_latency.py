#!/usr/bin/env python3
"""Verify latency, cold and warm, against a local registry.

usage: bench/verify_latency.py [--runs R] [--tuf-oci PATH]

Starts a throw-away docker-registry on 127.0.0.1 (storage on /dev/shm), pushes
a small image and signs it with tuf-oci, then times `tuf-oci verify` as a
separate process (start-up included):
  cold: a new trust cache each run (root pinned by file)
  warm: the same cache again, nothing changed
and counts the requests each makes through a logging proxy. The request-count
goals (warm 1 + the manifest; cold 4 + the manifest) are also asserted in
tests/it/verify.rs; this script adds the times.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(work: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    (work / "data").mkdir()
    (work / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {work / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: bench\n"
    )
    proc = subprocess.Popen(["docker-registry", "serve", str(work / "config.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("docker-registry did not start")


class Proxy(socketserver.ThreadingTCPServer):
    """Forwards HTTP/1.1 requests to the registry and counts them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.count = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), ProxyHandler)


class ProxyHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline().decode()
        if not line:
            return
        method, path, _ = line.split(" ", 2)
        headers = {}
        while (h := self.rfile.readline().decode().strip()):
            k, v = h.split(":", 1)
            headers[k.strip()] = v.strip()
        body = self.rfile.read(int(headers.get("Content-Length", "0") or 0))
        with self.server.lock:
            self.server.count += 1
        conn = http.client.HTTPConnection("127.0.0.1", self.server.upstream)
        headers.pop("Connection", None)
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.wfile.write(f"HTTP/1.1 {resp.status} {resp.reason}\r\n".encode())
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.wfile.write(f"{k}: {v}\r\n".encode())
        self.wfile.write(f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode())
        self.wfile.write(data)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--tuf-oci", default=str(Path(__file__).resolve().parent.parent / "target/release/tuf-oci"))
    args = ap.parse_args()
    tuf = args.tuf_oci
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    work = Path(tempfile.mkdtemp(prefix="tuf-oci-verify-bench-", dir=base))
    registry, port = start_registry(work)
    try:
        env = dict(os.environ, TUF_OCI_HOME=str(work / "home"), TUF_OCI_PASSPHRASE="bench")
        run = lambda *a, **kw: subprocess.run([tuf, *a], env=kw.get("env", env), cwd=work, check=True,
                                              capture_output=True, text=True)
        run("demo", "--repository", "oci:./src:demo-trust")
        subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{work}/src:1.0",
                        f"docker://127.0.0.1:{port}/org/app:1.0"], check=True, capture_output=True)
        out = run("sign", f"127.0.0.1:{port}/org/app:1.0").stdout
        root = next(l.split(": ", 1)[1] for l in out.splitlines() if "trusted root for verifiers" in l)
        proxy = Proxy(port)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        image = f"127.0.0.1:{proxy.server_address[1]}/org/app:1.0"

        def timed(home: Path, *extra: str) -> tuple[float, int]:
            e = dict(env, TUF_OCI_HOME=str(home))
            before = proxy.count
            start = time.perf_counter()
            run("verify", image, *extra, env=e)
            return time.perf_counter() - start, proxy.count - before

        cold, warm = [], []
        for i in range(args.runs):
            home = work / f"verifier-{i}"
            cold.append(timed(home, "--root", root))
            warm.append(timed(home))
        proxy.shutdown()
    finally:
        registry.kill()
        shutil.rmtree(work, ignore_errors=True)
    for name, results in (("cold", cold), ("warm", warm)):
        times = [t for t, _ in results]
        print(f"{name}: median {statistics.median(times) * 1000:.1f} ms "
              f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}), requests {results[0][1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
