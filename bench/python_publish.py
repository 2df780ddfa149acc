#!/usr/bin/env python3
"""python-tuf's side of bench/compare_publish.py: publish with the Metadata API.

usage: python_publish.py publish OUT TARGETS [--bins N]
       python_publish.py add OUT TARGETS

TARGETS: a directory (every file below it is a target, hashed here) or a JSON
file {NAME: {"length": N, "hashes": {"sha256": HEX}}} (digests known, as image
digests are).
publish: new ed25519 keys (kept in OUT/keys), the targets, consistent snapshots, snapshot and timestamp
entries with length and sha256 (as tuf-oci writes them); with --bins N the
targets go into N succinct hashed bins (TAP 15) signed by one more key.
add: one more target in the top-level targets role, re-signed with snapshot and
timestamp (new versions), keys read from OUT/keys.
Metadata files go to OUT/metadata, written the way python-tuf writes them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)

ROLES = ("root", "targets", "snapshot", "timestamp")


def expires(days: int) -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=days)


def new_signer(keys: Path, name: str) -> CryptoSigner:
    private = Ed25519PrivateKey.generate()
    (keys / f"{name}.pem").write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return CryptoSigner(private)


def load_signer(keys: Path, name: str) -> CryptoSigner:
    pem = (keys / f"{name}.pem").read_bytes()
    return CryptoSigner(serialization.load_pem_private_key(pem, password=None))


def write(meta: Path, md: Metadata, name: str, signer: CryptoSigner) -> bytes:
    md.signatures.clear()
    md.sign(signer)
    md.to_file(str(meta / name))
    return (meta / name).read_bytes()


def metafile(version: int, data: bytes) -> MetaFile:
    return MetaFile(version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})


def file_targets(files: Path) -> dict[str, TargetFile]:
    if files.is_file():
        listed = json.loads(files.read_text())
        return {name: TargetFile.from_dict(dict(v), name) for name, v in listed.items()}
    out = {}
    for dirpath, _, names in os.walk(files):
        for n in names:
            path = Path(dirpath) / n
            name = path.relative_to(files).as_posix()
            out[name] = TargetFile.from_file(name, str(path), ["sha256"])
    return out


def finish(meta: Path, signers: dict, described: dict[str, MetaFile], version: int) -> None:
    snapshot = Metadata(Snapshot(version=version, expires=expires(7), meta=described))
    snap = write(meta, snapshot, f"{version}.snapshot.json", signers["snapshot"])
    timestamp = Metadata(
        Timestamp(version=version, expires=expires(1), snapshot_meta=metafile(version, snap))
    )
    write(meta, timestamp, "timestamp.json", signers["timestamp"])


def publish(out: Path, files: Path, bins: int) -> None:
    meta, keys = out / "metadata", out / "keys"
    meta.mkdir(parents=True)
    keys.mkdir()
    signers = {r: new_signer(keys, r) for r in ROLES}
    root = Metadata(Root(expires=expires(365), consistent_snapshot=True))
    for role, s in signers.items():
        root.signed.add_key(s.public_key, role)
    write(meta, root, "1.root.json", signers["root"])
    targets = Metadata(Targets(expires=expires(90)))
    entries = file_targets(files)
    described = {}
    if bins:
        bin_signer = new_signer(keys, "bins")
        succinct = SuccinctRoles(
            keyids=[bin_signer.public_key.keyid],
            threshold=1,
            bit_length=bins.bit_length() - 1,
            name_prefix="bins",
        )
        targets.signed.delegations = Delegations(
            keys={bin_signer.public_key.keyid: bin_signer.public_key},
            roles=None,
            succinct_roles=succinct,
        )
        bin_md = {name: Metadata(Targets(expires=expires(90))) for name in succinct.get_roles()}
        for name, tf in entries.items():
            bin_md[succinct.get_role_for_target(name)].signed.targets[name] = tf
        for name, md in bin_md.items():
            data = write(meta, md, f"1.{name}.json", bin_signer)
            described[f"{name}.json"] = metafile(1, data)
    else:
        targets.signed.targets = entries
    data = write(meta, targets, "1.targets.json", signers["targets"])
    described["targets.json"] = metafile(1, data)
    finish(meta, signers, described, 1)


def add(out: Path, file: Path) -> None:
    meta, keys = out / "metadata", out / "keys"
    signers = {r: load_signer(keys, r) for r in ROLES}
    timestamp = Metadata[Timestamp].from_file(str(meta / "timestamp.json"))
    version = timestamp.signed.snapshot_meta.version
    snapshot = Metadata[Snapshot].from_file(str(meta / f"{version}.snapshot.json"))
    tv = snapshot.signed.meta["targets.json"].version
    targets = Metadata[Targets].from_file(str(meta / f"{tv}.targets.json"))
    targets.signed.targets.update(file_targets(file))
    targets.signed.version = tv + 1
    targets.signed.expires = expires(90)
    data = write(meta, targets, f"{tv + 1}.targets.json", signers["targets"])
    described = dict(snapshot.signed.meta)
    described["targets.json"] = metafile(tv + 1, data)
    finish(meta, signers, described, version + 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("publish")
    p.add_argument("out", type=Path)
    p.add_argument("files", type=Path)
    p.add_argument("--bins", type=int, default=0)
    a = sub.add_parser("add")
    a.add_argument("out", type=Path)
    a.add_argument("file", type=Path)
    args = ap.parse_args()
    if args.command == "publish":
        publish(args.out, args.files, args.bins)
    else:
        add(args.out, args.file)


if __name__ == "__main__":
    main()
