#!/usr/bin/env python3
"""Admission webhook load test on loopback: p50/p99 latency (warm) and requests/s.

usage: bench/admission_load.py [--requests N] [--concurrency C] [--verdict-ttl D] [--tuf-oci PATH]

Sets everything up itself, on 127.0.0.1 with temporary directories: Debian's
docker-registry, an image signed with tuf-oci and copied there, TLS
certificates (openssl), and `tuf-oci admission serve` (release build). Then
sends N AdmissionReviews for a Pod with that image over C keep-alive HTTPS
connections, after one warm-up request, and prints latency percentiles,
requests/s, and how many requests reached the registry per admission.
Needs docker-registry and openssl (scripts/test installs them).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import ssl
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int) -> None:
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def review(image: str, uid: int) -> bytes:
    return json.dumps({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": str(uid), "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "namespace": "default", "operation": "CREATE",
                    "object": {"spec": {"containers": [{"name": "c", "image": image}]}}},
    }).encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--tuf-oci", default=str(ROOT / "target" / "release" / "tuf-oci"))
    ap.add_argument("--verdict-ttl", default="30s", help="the webhook's --verdict-ttl (0s: ask the registry every time)")
    args = ap.parse_args()
    tuf = args.tuf_oci
    with tempfile.TemporaryDirectory(prefix="admission-load-") as tmp:
        work = Path(tmp)
        env = dict(os.environ, TUF_OCI_HOME=str(work / "home"), TUF_OCI_PASSPHRASE="pw", TUF_OCI_LOG="error")
        reg_port = free_port()
        (work / "registry.yml").write_text(
            f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {work}/data\nhttp:\n  addr: 127.0.0.1:{reg_port}\n")
        registry_log = open(work / "registry.log", "w")
        registry = subprocess.Popen(["docker-registry", "serve", str(work / "registry.yml")],
                                    stdout=registry_log, stderr=subprocess.STDOUT)
        server = None
        try:
            wait_port(reg_port)

            def run(*a: str) -> str:
                return subprocess.run([tuf, *a], cwd=work, env=env, check=True, capture_output=True, text=True).stdout

            run("demo", "--repository", "oci:./store:demo-trust")
            signed = run("sign", "oci:./store:1.0")
            root = next(l.split(": ", 1)[1] for l in signed.splitlines() if "trusted root for verifiers" in l)
            run("copy", "oci:./store", f"127.0.0.1:{reg_port}/store")
            image = f"127.0.0.1:{reg_port}/store:1.0"
            (work / "policy.yaml").write_text(
                f"version: 1\ntrust:\n  - images: [\"127.0.0.1:{reg_port}/store\"]\n    root: {root}\n")
            for cmd in (
                ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
                 "-out", "ca.crt", "-days", "2", "-subj", "/CN=load-ca"],
                ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key",
                 "-out", "server.csr", "-subj", "/CN=localhost"],
            ):
                subprocess.run(["openssl", *cmd], cwd=work, check=True, capture_output=True)
            (work / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
            subprocess.run(["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext"],
                           cwd=work, check=True, capture_output=True)
            port = free_port()
            server = subprocess.Popen([tuf, "admission", "serve", "--policy", "policy.yaml", "--tls-cert", "server.crt",
                                       "--tls-key", "server.key", "--listen", f"127.0.0.1:{port}", "--cache", "cache",
                                       "--verdict-ttl", args.verdict_ttl],
                                      cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(port)
            context = ssl.create_default_context(cafile=str(work / "ca.crt"))

            def connection() -> http.client.HTTPSConnection:
                return http.client.HTTPSConnection("127.0.0.1", port, context=context)

            def admit(conn: http.client.HTTPSConnection, uid: int) -> float:
                start = time.perf_counter()
                conn.request("POST", "/validate", body=review(image, uid), headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                body = json.loads(response.read())
                assert body["response"]["allowed"], body
                return time.perf_counter() - start

            admit(connection(), 0)  # warm up: the trust cache fills
            registry_log.flush()
            def registry_requests() -> int:
                return sum(1 for l in open(work / "registry.log") if '"GET /v2/' in l or '"HEAD /v2/' in l)

            before = registry_requests()
            latencies: list[float] = []
            lock = threading.Lock()
            per_thread = args.requests // args.concurrency

            def worker(n: int) -> None:
                conn = connection()
                mine = [admit(conn, n * per_thread + i) for i in range(per_thread)]
                with lock:
                    latencies.extend(mine)

            start = time.perf_counter()
            threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.concurrency)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start
            time.sleep(0.2)
            registry_log.flush()
            after = registry_requests()
            latencies.sort()
            q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
            print(f"{len(latencies)} admissions over {args.concurrency} connections, warm cache:")
            print(f"  p50 {q(0.50):.2f} ms, p99 {q(0.99):.2f} ms, max {latencies[-1] * 1000:.2f} ms")
            print(f"  {len(latencies) / elapsed:.0f} requests/s")
            print(f"  registry requests per admission: {(after - before) / len(latencies):.3f}")
        finally:
            if server:
                server.terminate()
                server.wait()
            registry.terminate()
            registry.wait()


if __name__ == "__main__":
    main()
