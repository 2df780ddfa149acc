//! `tuf-oci verify`: the newcomer's sign-then-verify on an image layout, a
//! swapped image, trust that moves with a copy to a registry, and the exit
//! statuses.

use std::process::Output;

use tuf_oci::store::{LayoutStore, MEDIA_TYPE_MANIFEST, Reference, Store, sha256_digest};

use crate::registry::{Auth, Registry};
use crate::support::{describe, trusted_root, tuf_oci, tuf_oci_in};

#[tokio::test]
async fn sign_then_verify_and_carry_trust_to_a_registry() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| -> Output { tuf_oci_in(dir.path()).args(args).output().unwrap() };
    let out = run(&["demo", "--repository", "oci:./store:demo-trust"]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = run(&["sign", "oci:./store:1.0"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let root = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("trusted root for verifiers: "))
        .unwrap()
        .to_owned();

    let out = run(&["verify", "oci:./store:1.0", "--root", &root]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("trusted: store:1.0 is sha256:"));
    // A trust cache that cannot be written: the check could not be made
    // (exit 2), which is not a verdict on the image.
    let broken = dir.path().join("broken-cache");
    let out = run(&[
        "verify",
        "oci:./store:1.0",
        "--root",
        &root,
        "--cache",
        broken.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    std::fs::remove_file(broken.join("targets.json")).unwrap();
    std::fs::create_dir(broken.join("targets.json")).unwrap();
    let out = run(&[
        "verify",
        "oci:./store:1.0",
        "--cache",
        broken.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("local cache: cannot write"),
        "{}",
        describe(&out)
    );

    // Someone re-points the tag at another image: not trusted, both digests named.
    let layout = LayoutStore::new(dir.path().join("store"));
    let other = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MEDIA_TYPE_MANIFEST}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},"layers":[]}}"#,
        sha256_digest(b"{}")
    );
    let good = layout
        .get_manifest(&Reference::Tag("1.0".into()), 1 << 20)
        .await
        .unwrap();
    layout
        .put_manifest(
            &Reference::Tag("1.0".into()),
            MEDIA_TYPE_MANIFEST,
            other.as_bytes(),
        )
        .await
        .unwrap();
    let out = run(&["verify", "oci:./store:1.0", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["verdict"], "not-trusted");
    let reason = verdict["reason"].as_str().unwrap();
    assert!(
        reason.contains(&sha256_digest(other.as_bytes()).to_string())
            && reason.contains(good.digest.digest()),
        "{reason}"
    );
    layout
        .put_manifest(
            &Reference::Tag("1.0".into()),
            MEDIA_TYPE_MANIFEST,
            &good.bytes,
        )
        .await
        .unwrap();

    // Copy images and trust data to a registry (same repository path, another
    // host): verified there with the same root, nothing re-signed.
    let registry = Registry::start(Auth::None);
    for (path, tag) in [
        ("store", "1.0"),
        ("store", "tuf-commit"),
        ("renamed/store", "1.0"),
        ("renamed/store", "tuf-commit"),
    ] {
        let out = std::process::Command::new("skopeo")
            .args([
                "copy",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
            ])
            .arg(format!("oci:{}:{tag}", dir.path().join("store").display()))
            .arg(format!("docker://{}/{path}:{tag}", registry.addr))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe(&out));
    }
    let home2 = dir.path().join("other-verifier");
    let verify_at = |image: String| {
        tuf_oci()
            .args(["verify", &image, "--root", &root])
            .env("TUF_OCI_HOME", &home2)
            .output()
            .unwrap()
    };
    let out = verify_at(format!("{}/store:1.0", registry.addr));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // Target names carry the repository path (not the host): a mirror under
    // another path does not match them.
    let out = verify_at(format!("{}/renamed/store:1.0", registry.addr));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no trusted target \"renamed/store:1.0\""),
        "{}",
        describe(&out)
    );

    // ... unless told the path target names carry (a policy's target-path).
    let out = tuf_oci()
        .args([
            "verify",
            &format!("{}/renamed/store:1.0", registry.addr),
            "--target-path",
            "store",
        ])
        .args([
            "--repository",
            &format!("{}/renamed/store", registry.addr),
            "--root",
            &root,
        ])
        .env("TUF_OCI_HOME", dir.path().join("renamed-verifier"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // Digest references are looked up through the alias target.
    let digest = good.digest.to_string();
    let out = verify_at(format!("{}/store@{digest}", registry.addr));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("store@{digest}")),
        "{}",
        describe(&out)
    );
    let other_digest = sha256_digest(b"not signed").to_string();
    let out = verify_at(format!("{}/store@{other_digest}", registry.addr));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));

    // The publisher's commands on the registry store: sign an image there
    // (a dry run first: nothing committed), then verify it.
    let fresh = format!("{}/fresh/app:1.0", registry.addr);
    let out = std::process::Command::new("skopeo")
        .args(["copy", "--preserve-digests", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:1.0", dir.path().join("store").display()))
        .arg(format!("docker://{fresh}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let out = run(&["sign", &fresh, "--dry-run"]);
    assert!(out.status.success(), "{}", describe(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains("would create TUF repository")
            && plan.contains("add target fresh/app:1.0 = sha256:"),
        "{plan}"
    );
    let out = run(&["verify", &fresh, "--root", &root]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "nothing was committed by the dry run: {}",
        describe(&out)
    );
    let out = run(&["sign", &fresh]);
    assert!(out.status.success(), "{}", describe(&out));
    let fresh_root = trusted_root(&out);
    let out = tuf_oci()
        .args(["verify", &fresh, "--root", &fresh_root])
        .env("TUF_OCI_HOME", dir.path().join("v3"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // Each pinned root has its own trust cache: the failed check above (the
    // layout's root) does not stand in the way of the right one.
    let out = run(&["verify", &fresh, "--root", &fresh_root]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // The failed check left no cache that counts: without a pin, the one
    // that completed a check is used.
    let out = run(&["verify", &fresh]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // Trust on first use continues that pinned cache.
    let out = run(&["verify", &fresh, "--trust-on-first-use"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // A cache named explicitly that grew from one root refuses another pin,
    // rather than silently ignoring it.
    let shared = dir.path().join("shared-cache");
    let shared = shared.to_str().unwrap();
    let out = run(&["verify", &fresh, "--root", &fresh_root, "--cache", shared]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = run(&["verify", &fresh, "--root", &root, "--cache", shared]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already trusts another root"),
        "{}",
        describe(&out)
    );
    let out = run(&[
        "target",
        "remove",
        "fresh/app:1.0",
        "--repository",
        &format!("{}/fresh/app", registry.addr),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = tuf_oci()
        .args(["verify", &fresh])
        .env("TUF_OCI_HOME", dir.path().join("v3"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));

    // Unreachable trust data: an error, not a verdict.
    let out = run(&["verify", "127.0.0.1:9/x/y:1.0", "--root", &root]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}

/// Two registries: publish on one, `tuf-oci copy` to the other, verify
/// there with the same root (flags, a policy file, or trust on first use),
/// resolve, and the failures: metadata replaced at the mirror, expiry.
#[tokio::test]
async fn copy_to_a_mirror_and_verify_there() {
    let (origin, mirror) = (Registry::start(Auth::None), Registry::start(Auth::None));
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let tuf = |args: &[&str], home: &std::path::Path| {
        tuf_oci()
            .args(args)
            .current_dir(dir.path())
            .env("TUF_OCI_HOME", home)
            .env("TUF_OCI_PASSPHRASE", "pw")
            .output()
            .unwrap()
    };
    // An image pushed by skopeo (from a layout the demo fills), signed on the origin.
    assert!(
        tuf(&["demo", "--repository", "oci:./src:demo-trust"], &home)
            .status
            .success()
    );
    let out = std::process::Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:1.0", dir.path().join("src").display()))
        .arg(format!("docker://{}/org/app:1.0", origin.addr))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let out = tuf(&["sign", &format!("{}/org/app:1.0", origin.addr)], &home);
    assert!(out.status.success(), "{}", describe(&out));
    let root = trusted_root(&out);

    // A multi-platform index over that image: the index digest is what is
    // trusted; its children are pinned by it.
    let origin_store =
        tuf_oci::store::RegistryStore::new(&origin.addr, "org/app", Default::default()).unwrap();
    let child = origin_store
        .get_manifest(&Reference::Tag("1.0".into()), 1 << 20)
        .await
        .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": tuf_oci::store::MEDIA_TYPE_INDEX,
        "manifests": [{"mediaType": MEDIA_TYPE_MANIFEST, "digest": child.digest.to_string(), "size": child.bytes.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    })
    .to_string();
    origin_store
        .put_manifest(
            &Reference::Tag("multi".into()),
            tuf_oci::store::MEDIA_TYPE_INDEX,
            index.as_bytes(),
        )
        .await
        .unwrap();
    let out = tuf(&["sign", &format!("{}/org/app:multi", origin.addr)], &home);
    assert!(out.status.success(), "{}", describe(&out));

    let out = tuf(
        &[
            "copy",
            &format!("{}/org/app", origin.addr),
            &format!("{}/org/app", mirror.addr),
        ],
        &home,
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("copied image 1.0"));

    // Flags.
    let at_mirror = format!("{}/org/app:1.0", mirror.addr);
    let verifier = dir.path().join("verifier");
    let out = tuf(&["verify", &at_mirror, "--root", &root], &verifier);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = tuf(
        &["verify", &format!("{}/org/app:multi", mirror.addr)],
        &verifier,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "the index and its child were copied: {}",
        describe(&out)
    );
    let out = tuf(
        &[
            "verify",
            &format!("{}/org/app@{}", mirror.addr, child.digest),
        ],
        &verifier,
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = tuf(&["resolve", &at_mirror], &verifier);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let resolved = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        resolved.starts_with(&format!("{}/org/app@sha256:", mirror.addr)),
        "{resolved}"
    );

    // A policy file: no flags at all.
    let by_policy = dir.path().join("by-policy");
    std::fs::create_dir_all(&by_policy).unwrap();
    std::fs::write(
        by_policy.join("policy.yaml"),
        format!(
            "version: 1\ntrust:\n  - images: [\"{}/org/*\"]\n    root: {root}\n",
            mirror.addr
        ),
    )
    .unwrap();
    let out = tuf(&["verify", &at_mirror], &by_policy);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // Pinned by root key fingerprint (what `tuf-oci key public` prints).
    let status = tuf(
        &[
            "status",
            "--repository",
            &format!("{}/org/app", origin.addr),
        ],
        &home,
    );
    assert!(status.status.success(), "{}", describe(&status));
    let key_dir = String::from_utf8_lossy(&status.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("keys: ").map(str::to_owned))
        .unwrap();
    let public = tuf(&["key", "public", &format!("{key_dir}/root.pem")], &home);
    let root_key = String::from_utf8_lossy(&public.stdout)
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let out = tuf(
        &["verify", &at_mirror, "--root-key", &root_key],
        &dir.path().join("by-key"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = tuf(
        &["verify", &at_mirror, "--root-key", &"ab".repeat(32)],
        &dir.path().join("wrong-key"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not signed by the pinned root keys"),
        "{}",
        describe(&out)
    );

    // Nothing pinned: an error, unless trust on first use is asked for.
    let fresh = dir.path().join("fresh");
    let out = tuf(&["verify", &at_mirror], &fresh);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no trusted root"),
        "{}",
        describe(&out)
    );
    let out = tuf(&["verify", &at_mirror, "--trust-on-first-use"], &fresh);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // Warm: one request for the trust data, one for the image manifest.
    let proxy = crate::fault_proxy::FaultProxy::start(&mirror.addr);
    let via_proxy = format!("{}/org/app:1.0", proxy.addr);
    let warm = dir.path().join("warm");
    assert_eq!(
        tuf(&["verify", &via_proxy, "--root", &root], &warm)
            .status
            .code(),
        Some(0)
    );
    let cold = proxy.requests();
    assert_eq!(
        cold.len(),
        5,
        "cold: commit index, top-level manifest, snapshot, targets, image manifest: {cold:?}"
    );
    assert_eq!(
        cold.last().map(String::as_str),
        Some("GET /v2/org/app/manifests/1.0")
    );
    proxy.clear_requests();
    assert_eq!(tuf(&["verify", &via_proxy], &warm).status.code(), Some(0));
    assert_eq!(
        proxy.requests(),
        [
            "GET /v2/org/app/manifests/tuf-commit",
            "GET /v2/org/app/manifests/1.0"
        ]
    );

    // On the origin, someone pushes other content under the signed tag: not
    // trusted, the reason names the trusted and the served digest.
    let at_origin = format!("{}/org/app:1.0", origin.addr);
    let origin_verifier = dir.path().join("origin-verifier");
    let out = tuf(&["verify", &at_origin, "--root", &root], &origin_verifier);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let swapped = origin_store
        .put_manifest(
            &Reference::Tag("1.0".into()),
            tuf_oci::store::MEDIA_TYPE_INDEX,
            index.as_bytes(),
        )
        .await
        .unwrap();
    let out = tuf(&["verify", &at_origin], &origin_verifier);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let reason = String::from_utf8_lossy(&out.stdout);
    assert!(
        reason.contains(&child.digest.to_string()) && reason.contains(&swapped.to_string()),
        "{}",
        describe(&out)
    );
    // The mirror copied before the swap still serves the signed image.
    let out = tuf(&["verify", &at_mirror], &verifier);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // Expired metadata (a day and more later): not trusted, expiry named.
    let out = std::process::Command::new("faketime")
        .args([
            "+3 days",
            env!("CARGO_BIN_EXE_tuf-oci"),
            "verify",
            &at_mirror,
        ])
        .env("TUF_OCI_HOME", &verifier)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("expired at"),
        "{}",
        describe(&out)
    );

    // The mirror's trust data replaced by a repository signed with other keys.
    let attacker = dir.path().join("attacker");
    let out = std::process::Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:1.0", dir.path().join("src").display()))
        .arg(format!("docker://{}/attack/app:1.0", mirror.addr))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        tuf(
            &["sign", &format!("{}/attack/app:1.0", mirror.addr)],
            &attacker
        )
        .status
        .success()
    );
    let out = tuf(
        &[
            "copy",
            &format!("{}/attack/app", mirror.addr),
            &format!("{}/org/app", mirror.addr),
        ],
        &attacker,
    );
    assert!(out.status.success(), "{}", describe(&out));
    let out = tuf(
        &["verify", &at_mirror, "--root", &root],
        &dir.path().join("victim"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("does not verify"),
        "{}",
        describe(&out)
    );
    // A home that pinned the root before: asking for trust on first use
    // continues from that root, it does not trust the replaced one.
    let out = tuf(&["verify", &at_mirror, "--trust-on-first-use"], &verifier);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("does not verify"),
        "{}",
        describe(&out)
    );
}
