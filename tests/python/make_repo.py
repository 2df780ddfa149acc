#!/usr/bin/env python3
"""Write a TUF repository with python-tuf's Metadata API, for interop tests.

usage: make_repo.py OUTDIR {ed25519,ecdsa,rsa,bins}

Layout (consistent snapshots):
  OUTDIR/metadata/1.root.json, 2.root.json   root v1, and v2 (root + timestamp
                                             keys rotated; signed by old+new)
  OUTDIR/metadata/timestamp.json
  OUTDIR/metadata/N.snapshot.json, N.targets.json, N.<delegated>.json
  OUTDIR/targets/<dir>/<sha256>.<name> and <dir>/<sha512>.<name>
  OUTDIR/expected.json                       what a client should find

Versions deliberately differ per role (targets 2, snapshot 3, timestamp 4,
delegated roles 1) so that a client mixing them up fails.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Signed,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

KINDS = ("ed25519", "ecdsa", "rsa", "bins")
# Pretty-printed (indent=1, sorted keys): NOT canonical JSON, so a verifier must
# re-canonicalize "signed" rather than verify the raw file bytes.
PRETTY = JSONSerializer(compact=False)
EXPIRES = datetime.now(timezone.utc) + timedelta(days=30)
TARGET_HASHES = ["sha256", "sha512"]
VERSIONS = {"targets": 2, "snapshot": 3, "timestamp": 4}


def new_signer(kind: str, scheme: str | None = None) -> CryptoSigner:
    """Generate a fresh key of the repository's kind ("bins" uses ed25519)."""
    if kind == "ecdsa":
        return CryptoSigner.generate_ecdsa()  # ecdsa-sha2-nistp256
    if kind == "rsa":
        return CryptoSigner.generate_rsa(scheme=scheme or "rsassa-pss-sha256")
    return CryptoSigner.generate_ed25519()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RepoWriter:
    def __init__(self, out: Path):
        self.meta_dir = out / "metadata"
        self.targets_dir = out / "targets"
        self.meta_dir.mkdir(parents=True, exist_ok=True)
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        self.expected: dict[str, dict[str, Any]] = {}

    def add_target(
        self, role: str, md: Targets, path: str, custom: Any = None
    ) -> None:
        """Add a target to `md`, write its hash-prefixed files, record it."""
        data = f"target {path} listed by {role}\n".encode()
        tf = TargetFile.from_data(path, data, TARGET_HASHES)
        if custom is not None:
            tf.unrecognized_fields["custom"] = custom
        md.targets[path] = tf
        # One copy per hash: <dir>/<hexdigest>.<basename> (get_prefixed_paths)
        for rel in tf.get_prefixed_paths():
            dest = self.targets_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        self.expected[path] = {"length": len(data), "sha256": sha256(data), "role": role}

    def write(self, md: Metadata[Signed], name: str) -> MetaFile:
        """Write md as metadata/<name>; return its MetaFile (len + sha256)."""
        data = md.to_bytes(PRETTY)
        (self.meta_dir / name).write_bytes(data)
        return MetaFile(md.signed.version, len(data), {"sha256": sha256(data)})


def build(out: Path, kind: str) -> None:
    repo = RepoWriter(out)
    # Top-level keys. For rsa, snapshot uses rsassa-pss-sha512 and targets
    # rsa-pkcs1v15-sha256 (both used by real repositories and the conformance suite).
    root1, root2 = new_signer(kind), new_signer(kind)
    ts1, ts2 = new_signer(kind), new_signer(kind)
    snap = new_signer(kind, "rsassa-pss-sha512")
    targ = new_signer(kind, "rsa-pkcs1v15-sha256")

    # --- targets and delegated targets -----------------------------------
    targets = Metadata(Targets(version=VERSIONS["targets"], expires=EXPIRES))
    delegated: dict[str, tuple[Metadata[Targets], CryptoSigner]] = {}

    if kind == "bins":
        # TAP 15 succinct hash-bin delegation: 2**4 = 16 bins bin-0 .. bin-f
        bin_key = new_signer(kind)
        succinct = SuccinctRoles([bin_key.public_key.keyid], 1, 4, "bin")
        targets.signed.delegations = Delegations(
            keys={bin_key.public_key.keyid: bin_key.public_key},
            succinct_roles=succinct,
        )
        for name in succinct.get_roles():
            delegated[name] = (Metadata(Targets(expires=EXPIRES)), bin_key)
        for i in range(50):
            path = f"bins/target-{i:02d}.txt"
            name = succinct.get_role_for_target(path)
            repo.add_target(name, delegated[name][0].signed, path)
    else:
        repo.add_target("targets", targets.signed, "file1.txt")
        repo.add_target("targets", targets.signed, "dir/file.txt")
        repo.add_target(
            "targets",
            targets.signed,
            "custom.bin",
            custom={"mediaType": "application/octet-stream", "n": 42},
        )
        # For rsa, role-a's key uses rsassa-pss-sha384 (the third PSS variant).
        key_a, key_h = new_signer(kind, "rsassa-pss-sha384"), new_signer(kind)
        hashed_path = "h/hashed.txt"
        roles = {
            "role-a": DelegatedRole(
                "role-a", [key_a.public_key.keyid], 1, False, paths=["a/*"]
            ),
            "hashed": DelegatedRole(
                "hashed",
                [key_h.public_key.keyid],
                1,
                False,
                path_hash_prefixes=[sha256(hashed_path.encode())[:2]],
            ),
        }
        targets.signed.delegations = Delegations(
            keys={k.public_key.keyid: k.public_key for k in (key_a, key_h)},
            roles=roles,
        )
        delegated["role-a"] = (Metadata(Targets(expires=EXPIRES)), key_a)
        delegated["hashed"] = (Metadata(Targets(expires=EXPIRES)), key_h)
        repo.add_target("role-a", delegated["role-a"][0].signed, "a/x.txt")
        repo.add_target("hashed", delegated["hashed"][0].signed, hashed_path)

    # --- sign & write targets roles, collecting snapshot meta --------------
    snapshot = Metadata(Snapshot(version=VERSIONS["snapshot"], expires=EXPIRES))
    targets.sign(targ)
    snapshot.signed.meta = {
        "targets.json": repo.write(targets, f"{targets.signed.version}.targets.json")
    }
    for name, (md, signer) in delegated.items():
        md.sign(signer)
        snapshot.signed.meta[f"{name}.json"] = repo.write(
            md, f"{md.signed.version}.{name}.json"
        )

    snapshot.sign(snap)
    snap_meta = repo.write(snapshot, f"{snapshot.signed.version}.snapshot.json")
    timestamp = Metadata(
        Timestamp(version=VERSIONS["timestamp"], expires=EXPIRES, snapshot_meta=snap_meta)
    )

    # --- root v1, then v2 with root and timestamp keys rotated -------------
    def make_root(version: int, root_key: CryptoSigner, ts_key: CryptoSigner) -> Root:
        r = Root(version=version, expires=EXPIRES, consistent_snapshot=True)
        for role, signer in (
            ("root", root_key),
            ("timestamp", ts_key),
            ("snapshot", snap),
            ("targets", targ),
        ):
            r.add_key(signer.public_key, role)
        return r

    root_v1 = Metadata(make_root(1, root1, ts1))
    root_v1.sign(root1)
    repo.write(root_v1, "1.root.json")
    root_v2 = Metadata(make_root(2, root2, ts2))
    root_v2.sign(root1, append=True)  # threshold of the old root ...
    root_v2.sign(root2, append=True)  # ... and of the new root
    repo.write(root_v2, "2.root.json")

    timestamp.sign(ts2)  # the timestamp key trusted by root v2
    repo.write(timestamp, "timestamp.json")

    expected = {
        "targets": repo.expected,
        "roles": ["root", "timestamp", "snapshot", "targets", *delegated],
        "root_versions": 2,
    }
    (out / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[2] not in KINDS:
        print(f"usage: {sys.argv[0]} OUTDIR {{{','.join(KINDS)}}}", file=sys.stderr)
        return 2
    build(Path(sys.argv[1]), sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
