#!/usr/bin/env python3
"""Publishing, tuf-oci vs python-tuf's Metadata API vs tuftool, same workloads, one run.

usage: bench/compare_publish.py [--runs R] [--targets N] [--bin-targets M] [--tuf-oci PATH]
                                [--tuftool PATH | --no-tuftool] [--input json|files]
                                [--bins-in-steps]

Workloads (ed25519 keys, consistent snapshots, sha256, threshold 1, 100-byte targets
on tmpfs; separate processes, start-up included; keys generated beforehand,
unencrypted, outside the timing). The targets are given as a JSON map of names to
length and sha256 (--input json, the default: an OCI publisher knows its image
digests and hashes nothing), or as files that each tool reads and hashes (--input
files; on this kind of machine reading 100,000 small files alone takes ~1.5 s of
system time, which then dominates every tool). tuftool can only take files.
  publish N targets (default 10,000) into a new repository
  add 1 target to it and re-sign (targets, snapshot, timestamp)
  publish M targets (default 100,000) in 256 succinct hashed bins
tuf-oci writes an OCI image layout (`init --targets`, with `--bins 256` for the
bins workload; with --bins-in-steps that one is `init`, `delegate bins` and
`target import`, three processes and three commits, all counted); python-tuf writes its
metadata directory (bench/python_publish.py); tuftool (crates.io, 0.17) runs
`create` and `update` (it has no succinct bins, so it sits out that workload).
tuftool is heavy to build: the first run builds it once into .cache/tuftool
(`cargo install tuftool --version 0.17.0 --locked`); the test suite never needs it.
Prints the median wall time and peak RSS of each, and the ratios to tuf-oci.
Each tool first runs every workload once untimed under /usr/bin/time, for its
peak RSS (and as a warm-up); the timed runs start the tool directly.
Run it with the project's venv: .venv/bin/python bench/compare_publish.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY_PUBLISH = ROOT / "bench" / "python_publish.py"
TUFTOOL_CACHE = ROOT / ".cache" / "tuftool"


# Whether run() measures peak RSS (the untimed first pass of each tool) or
# wall time (the timed runs after it).
_rss_pass = False


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, int]:
    """Run cmd; return (wall seconds, peak RSS in MB): the wall time in a
    timed run, the peak RSS in the RSS pass (the other is 0).

    Timed runs start the tool directly: a /usr/bin/time wrapper adds its own
    fork and exec (~2-3 ms here) to every run, a large share of a 20 ms run.
    Peak RSS cannot be taken from this (big) Python process's own children,
    whose counters start from its size, so the RSS pass runs the tool under
    /usr/bin/time, untimed.
    """
    if _rss_pass:
        cmd = ["/usr/bin/time", "-f", "%M", *cmd]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    if _rss_pass:
        return 0.0, int(proc.stderr.strip().splitlines()[-1]) // 1024
    return wall, 0


def make_files(directory: Path, n: int, prefix: str = "t") -> Path:
    """n 100-byte files in directory, and their JSON listing beside it."""
    directory.mkdir(parents=True)
    listing = {}
    for i in range(n):
        name = f"{prefix}{i:06d}.txt"
        data = f"{prefix} {i:06d} ".encode().ljust(100, b".")
        (directory / name).write_bytes(data)
        listing[name] = {"length": len(data), "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}
    listed = directory.with_suffix(".json")
    listed.write_text(json.dumps(listing))
    return listed


def tuftool_binary(given: str | None) -> Path:
    if given:
        return Path(given)
    binary = TUFTOOL_CACHE / "bin" / "tuftool"
    if not binary.exists():
        print("building tuftool 0.17.0 once into .cache/tuftool (several minutes)...", flush=True)
        subprocess.run(
            ["cargo", "install", "tuftool", "--version", "0.17.0", "--locked", "--root", str(TUFTOOL_CACHE)],
            check=True,
        )
    return binary


class TufOci:
    name = "tuf-oci"

    def __init__(self, binary: Path, work: Path, separate_steps: bool):
        self.binary = str(binary)
        self.separate_steps = separate_steps
        self.keys = work / "tuf-oci-keys"
        self.keys.mkdir()
        for role in ("root", "targets", "snapshot", "timestamp", "bins"):
            subprocess.run(
                [self.binary, "key", "generate", "--out", str(self.keys / f"{role}.pem"), "--insecure-plain"],
                check=True,
                capture_output=True,
            )
        # The bins' key is given with --key, not found in the key directory.
        (self.keys / "bins.pem").rename(work / "tuf-oci-bins.pem")
        self.bins_key = work / "tuf-oci-bins.pem"
        self.env = dict(os.environ, TUF_OCI_HOME=str(work / "tuf-oci-home"), TUF_OCI_LOG="error")

    def steps(self, out: Path, files: Path, bins: bool) -> list[list[str]]:
        repo = ["--repository", f"oci:{out}", "--keys", str(self.keys)]
        # A new repository that holds its targets from the first commit (in
        # 256 bins from the start, for the bins workload), as python-tuf's
        # script writes its repository in one go.
        init = [self.binary, "init", "--targets", str(files), *repo]
        if not bins:
            return [init]
        if self.separate_steps:
            return [
                [self.binary, "init", *repo],
                [self.binary, "delegate", "bins", "--count", "256", "--key-of-role", str(self.bins_key), *repo],
                [self.binary, "target", "import", str(files), *repo, "--key", f"bins-*={self.bins_key}"],
            ]
        return [[*init, "--bins", "256", "--bins-key", str(self.bins_key)]]

    def publish(self, out: Path, files: Path, bins: bool) -> tuple[float, int]:
        total, rss = 0.0, 0
        for step in self.steps(out, files, bins):
            wall, peak = run(step, out.parent, self.env)
            total, rss = total + wall, max(rss, peak)
        return total, rss

    def add(self, out: Path, one: Path) -> tuple[float, int]:
        repo = ["--repository", f"oci:{out}", "--keys", str(self.keys)]
        return run([self.binary, "target", "import", str(one), *repo], out.parent, self.env)


class PythonTuf:
    name = "python-tuf"

    def publish(self, out: Path, files: Path, bins: bool) -> tuple[float, int]:
        extra = ["--bins", "256"] if bins else []
        return run([sys.executable, str(PY_PUBLISH), "publish", str(out), str(files), *extra], out.parent)

    def add(self, out: Path, one: Path) -> tuple[float, int]:
        return run([sys.executable, str(PY_PUBLISH), "add", str(out), str(one)], out.parent)


class Tuftool:
    name = "tuftool"

    def __init__(self, binary: Path, work: Path):
        self.binary = str(binary)
        self.root = work / "tuftool-root.json"
        self.key = work / "tuftool-key.der"
        # One ed25519 key for every role (tuftool's usual set-up), made with openssl:
        # tough reads ed25519 keys as PKCS#8 DER only.
        pem = work / "tuftool-key.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(pem)], check=True)
        subprocess.run(["openssl", "pkey", "-in", str(pem), "-outform", "DER", "-out", str(self.key)], check=True)
        t = self.binary
        subprocess.run([t, "root", "init", str(self.root)], check=True)
        subprocess.run([t, "root", "expire", str(self.root), "in 52 weeks"], check=True)
        for role in ("root", "snapshot", "targets", "timestamp"):
            subprocess.run([t, "root", "set-threshold", str(self.root), role, "1"], check=True)
            subprocess.run([t, "root", "add-key", str(self.root), "-k", str(self.key), "--role", role], check=True, capture_output=True)
        subprocess.run([t, "root", "sign", str(self.root), "-k", str(self.key)], check=True, capture_output=True)

    def expiry_args(self, version: int) -> list[str]:
        return [
            "--targets-expires", "in 13 weeks", "--targets-version", str(version),
            "--snapshot-expires", "in 7 days", "--snapshot-version", str(version),
            "--timestamp-expires", "in 1 day", "--timestamp-version", str(version),
        ]

    def publish(self, out: Path, files: Path, bins: bool) -> tuple[float, int]:
        cmd = [self.binary, "create", "--root", str(self.root), "--key", str(self.key),
               "--add-targets", str(files), "--outdir", str(out), *self.expiry_args(1)]
        return run(cmd, out.parent)

    def add(self, out: Path, one: Path) -> tuple[float, int]:
        cmd = [self.binary, "update", "--root", str(self.root), "--key", str(self.key),
               "--metadata-url", f"file://{out}/metadata", "--add-targets", str(one),
               "--outdir", str(out.parent / (out.name + "-updated")), *self.expiry_args(2)]
        return run(cmd, out.parent)


def median(samples: list[tuple[float, int]]) -> tuple[float, int]:
    """The median wall time of the timed runs, the peak RSS of the RSS pass."""
    return statistics.median(s[0] for s in samples[1:]), max(s[1] for s in samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--targets", type=int, default=10_000)
    ap.add_argument("--bin-targets", type=int, default=100_000)
    ap.add_argument("--tuf-oci", default=str(ROOT / "target" / "release" / "tuf-oci"))
    ap.add_argument("--tuftool")
    ap.add_argument("--no-tuftool", action="store_true")
    ap.add_argument("--input", choices=["json", "files"], default="json")
    ap.add_argument("--bins-in-steps", action="store_true",
                    help="tuf-oci builds the bins repository in three commands, three commits")
    args = ap.parse_args()
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="compare-publish-", dir=base) as tmp:
        work = Path(tmp)
        files, one, many = work / "files", work / "one", work / "many"
        listed = [make_files(files, args.targets), make_files(one, 1, prefix="new"),
                  make_files(many, args.bin_targets)]
        given = listed if args.input == "json" else [files, one, many]
        tools = [TufOci(Path(args.tuf_oci), work, args.bins_in_steps), PythonTuf()]
        if not args.no_tuftool:
            tools.append(Tuftool(tuftool_binary(args.tuftool), work))
        results: dict[str, dict[str, tuple[float, int]]] = {}
        for tool in tools:
            res = results.setdefault(tool.name, {})
            samples = {"publish": [], "add": [], "bins": []}
            global _rss_pass
            for r in range(args.runs + 1):
                _rss_pass = r == 0
                out = work / f"{tool.name}-{r}" / "repo"
                out.parent.mkdir()
                inputs = [files, one, many] if isinstance(tool, Tuftool) else given
                samples["publish"].append(tool.publish(out, inputs[0], False))
                samples["add"].append(tool.add(out, inputs[1]))
                if not isinstance(tool, Tuftool):
                    bins_out = work / f"{tool.name}-{r}" / "bins"
                    samples["bins"].append(tool.publish(bins_out, inputs[2], True))
                shutil.rmtree(out.parent)
            for k, v in samples.items():
                if v:
                    res[k] = median(v)
        labels = {
            "publish": f"publish {args.targets:,} targets",
            "add": "add 1 target and re-sign",
            "bins": f"publish {args.bin_targets:,} targets in 256 bins",
        }
        print(f"median of {args.runs} runs (wall s, peak RSS MB); ratio = peer time / tuf-oci time")
        print(f"targets given as {args.input}" + (" (tuftool: files)" if args.input == "json" else ""))
        for key, label in labels.items():
            ours = results["tuf-oci"][key][0]
            print(f"\n{label}")
            for tool in tools:
                if key not in results[tool.name]:
                    print(f"  {tool.name:<11} n/a (no succinct bins)")
                    continue
                wall, rss = results[tool.name][key]
                ratio = "" if tool.name == "tuf-oci" else f"  {wall / ours:5.1f}x"
                print(f"  {tool.name:<11} {wall:7.3f} s {rss:5d} MB{ratio}")


if __name__ == "__main__":
    main()
