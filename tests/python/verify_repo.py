#!/usr/bin/env python3
"""Check a TUF repository (e.g. written by tuf-oci) with python-tuf's ngclient.

usage: verify_repo.py [--expect-fail] [--cache DIR] REPO_DIR

REPO_DIR holds metadata/ (1.root.json, ..., timestamp.json), targets/ and
expected.json ({"targets": {path: {"length", "sha256", ["role"]}}, ...}).
REPO_DIR is served on 127.0.0.1:<random port>; the Updater is bootstrapped with
1.root.json, refreshed, and every expected target is looked up and downloaded
(unless its entry says "download": false).

With --cache DIR the client's metadata directory is DIR and survives the run:
a later run against a newer state of the repository starts from what this one
trusted (bootstrapped from 1.root.json only when DIR holds no root.json), so
python-tuf follows root rotations and key changes as a deployed client would.

Exit 0 when everything matches; 1 otherwise.
With --expect-fail: exit 0 only if python-tuf itself raises (in refresh,
get_targetinfo or download_target); mismatches against expected.json alone
do not count as the expected failure.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import re
import sys
import tempfile
import threading
from functools import partial
from pathlib import Path

from tuf.api.metadata import Metadata, Root
from tuf.ngclient import Updater


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class Rejected(Exception):
    """python-tuf raised while doing `stage`."""

    def __init__(self, stage: str, err: Exception):
        super().__init__(f"{stage}: {type(err).__name__}: {err}")


def highest_root_version(meta_dir: Path) -> int:
    versions = [
        int(m.group(1))
        for p in meta_dir.iterdir()
        if (m := re.fullmatch(r"(\d+)\.root\.json", p.name))
    ]
    return max(versions, default=0)


def check(repo: Path, work: Path, cache: Path | None) -> tuple[int, list[str]]:
    """Run the client; return (number of targets, mismatch messages).

    Raises Rejected when python-tuf fails.
    """
    expected = json.loads((repo / "expected.json").read_text())
    meta_dir, target_dir = cache or work / "metadata", work / "targets"
    meta_dir.mkdir(parents=True, exist_ok=True)
    root_bytes = None
    if not (meta_dir / "root.json").exists():
        root_bytes = (repo / "metadata" / "1.root.json").read_bytes()
        (meta_dir / "root.json").write_bytes(root_bytes)  # the trust anchor

    handler = partial(QuietHandler, directory=str(repo))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        try:
            try:
                updater = Updater(
                    metadata_dir=str(meta_dir),
                    metadata_base_url=f"{base}/metadata/",
                    target_dir=str(target_dir),
                    target_base_url=f"{base}/targets/",
                    bootstrap=root_bytes,
                )
            except Exception as e:
                raise Rejected("Updater(trusted root)", e) from e
            try:
                updater.refresh()
            except Exception as e:
                raise Rejected("refresh", e) from e
            return len(expected["targets"]), check_targets(
                updater, expected, repo, meta_dir
            )
        finally:
            httpd.shutdown()


def check_targets(
    updater: Updater, expected: dict, repo: Path, meta_dir: Path
) -> list[str]:
    problems = []
    # ngclient keeps root.json pointing at the newest trusted root version.
    trusted = Metadata[Root].from_file(str(meta_dir / "root.json")).signed.version
    highest = highest_root_version(repo / "metadata")
    if trusted != highest:
        problems.append(f"trusted root version {trusted} != highest N.root.json {highest}")
    print(f"root: trusted version {trusted}")

    for path, exp in sorted(expected["targets"].items()):
        before = len(problems)
        try:
            info = updater.get_targetinfo(path)
        except Exception as e:
            raise Rejected(f"get_targetinfo({path!r})", e) from e
        if info is None:
            problems.append(f"{path}: not found by get_targetinfo")
            print(f"MISSING {path}")
            continue
        got_sha = info.hashes.get("sha256")
        if info.length != exp["length"] or got_sha != exp["sha256"]:
            problems.append(
                f"{path}: metadata says length={info.length} sha256={got_sha}, "
                f"expected length={exp['length']} sha256={exp['sha256']}"
            )
        if exp.get("download") is False:
            print(f"ok {path} (metadata only)")
            continue
        try:
            local = updater.download_target(info)
        except Exception as e:
            raise Rejected(f"download_target({path!r})", e) from e
        data = Path(local).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != exp["sha256"] or len(data) != exp["length"]:
            problems.append(f"{path}: downloaded {len(data)} bytes sha256={digest}")
        print(f"{'ok' if len(problems) == before else 'BAD'} {path} length={len(data)} sha256={digest}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repo_dir", type=Path)
    ap.add_argument(
        "--expect-fail",
        action="store_true",
        help="succeed only if python-tuf rejects the repository",
    )
    ap.add_argument("--cache", type=Path, help="persistent client metadata directory")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="verify_repo-") as tmp:
        try:
            n, problems = check(args.repo_dir.resolve(), Path(tmp), args.cache)
        except Rejected as e:
            if args.expect_fail:
                print(f"EXPECTED FAILURE: python-tuf rejected the repository in {e}")
                return 0
            print(f"FAIL: python-tuf rejected the repository in {e}")
            return 1
        except Exception as e:  # bad REPO_DIR / expected.json: never "expected"
            print(f"FAIL: cannot check {args.repo_dir}: {type(e).__name__}: {e}")
            return 1

    for p in problems:
        print(f"MISMATCH: {p}")
    if args.expect_fail:
        print("FAIL: expected python-tuf to reject the repository, but refresh "
              "and all downloads succeeded")
        return 1
    if problems:
        print(f"FAIL: {len(problems)} mismatch(es) against expected.json")
        return 1
    print(f"OK {n} targets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
