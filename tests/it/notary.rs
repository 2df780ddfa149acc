//! Migration from a real Notary v1 server: notary-server and notary-signer
//! from the Debian package, trust data published with the real `notary`
//! client, migrated to the real registry, every tag verified to the digest
//! `docker pull` with content trust would pull.

use std::path::{Path, PathBuf};
use std::process::Command;

use tuf_oci::publish::RepoState;
use tuf_oci::store::{RegistryConfig, RegistryStore};

use crate::registry::{Auth, Registry};
use crate::support::{describe, tuf_oci_in, workspace};

pub(crate) fn tools() -> PathBuf {
    workspace().join("fixtures/notary-v1/tools")
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// notary-signer + notary-server on free ports, stopped on drop.
pub(crate) struct NotaryServer {
    pub(crate) url: String,
    run_dir: tempfile::TempDir,
}

impl NotaryServer {
    /// Over HTTPS (the fixture CA) when `tls`.
    pub(crate) fn start(tls: bool) -> Self {
        let run_dir = tempfile::tempdir().unwrap();
        let out = Command::new(tools().join("start-notary.sh"))
            .env("TLS", if tls { "1" } else { "0" })
            .env("PORT", free_port().to_string())
            .env("SIGNER_PORT", free_port().to_string())
            .env("RUN_DIR", run_dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "start-notary.sh: {}", describe(&out));
        let url = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .to_owned();
        Self { url, run_dir }
    }
}

impl Drop for NotaryServer {
    fn drop(&mut self) {
        let _ = Command::new(tools().join("stop-notary.sh"))
            .env("RUN_DIR", self.run_dir.path())
            .output();
    }
}

/// The fixture images' digests by tag (`images/targets.tsv`).
pub(crate) fn digest_of(image_tag: &str) -> String {
    let tsv =
        std::fs::read_to_string(workspace().join("fixtures/notary-v1/images/targets.tsv")).unwrap();
    tsv.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0] == image_tag).then(|| format!("sha256:{}", f[2]))
        })
        .unwrap()
}

pub(crate) fn push_image(registry: &str, image_tag: &str, to: &str) {
    let layout = workspace().join("fixtures/notary-v1/images");
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{image_tag}", layout.display()))
        .arg(format!("docker://{registry}/{to}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo: {}", describe(&out));
}

#[test]
fn a_live_notary_server_is_migrated_and_every_tag_verifies_as_docker_pulls_it() {
    // Over HTTPS: the server's certificate from the fixture CA.
    let server = NotaryServer::start(true);
    let ca = tools().join("certs/root-ca.crt");
    let data = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .env("NOTARY_CA", &ca)
        .arg(tools().join("generate.sh"))
        .arg(&server.url)
        .arg(data.path())
        .arg(workspace().join("fixtures/notary-v1/images/targets.tsv"))
        .arg("full")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "generate.sh (the real notary client): {}",
        describe(&out)
    );

    let registry = Registry::start(Auth::None);
    let addr = registry.addr.clone();
    for (image, to) in [
        ("v1.1", "org/app:v1.1"),
        ("v1.2", "org/app:v1.2"),
        ("v2.0", "org/app:v2.0"),
        ("v2.0", "org/app:latest"),
        ("v2.0-rc1", "org/app:v2.0-rc1"),
        ("base-1.0", "org/base:1.0"),
        ("base-1.0", "org/base:latest"),
    ] {
        push_image(&addr, image, to);
    }
    let dir = tempfile::tempdir().unwrap();
    let tuf = |args: &[&str]| tuf_oci_in(dir.path()).args(args).output().unwrap();
    let out = tuf(&[
        "notary",
        "migrate",
        "--server",
        &server.url,
        "--server-ca",
        ca.to_str().unwrap(),
        "--gun",
        "example.com/org/app",
        "--gun",
        "example.com/org/base",
        "--registry",
        &addr,
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in [
        "org/app:latest → sha256:ff6eaa2473d5e7d390cabbbd0d826c6bc02f635e3237acfd1c482d030915e587 (401 bytes) in role releases (from targets/releases); Docker pulls this",
        "org/app:v2.0-rc1 → sha256:e0bc2ccb172f6b2a72113ea4cf3bae7193de075be67aa7f6d738d50837e05ddb (401 bytes) in role alice (from targets/alice); not pulled by Docker (found only in targets/alice)",
        "not migrated: targets: latest (sha256:f38357c5e69fb1ff38528cdf9bcc841752848134b09a74438465b2101ca987ac) is shadowed by targets/releases",
        "org/base:1.0 → sha256:751b08cc9dcb197d9d9993034ce492034372f6f55b59c215d44dc432758cef66",
    ] {
        assert!(stdout.contains(line), "no {line:?} in\n{stdout}");
    }
    let roots: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("trusted root for verifiers: "))
        .map(str::to_owned)
        .collect();
    assert_eq!(roots.len(), 2, "{stdout}");
    // Every tag Docker pulls verifies to the digest Docker would pull.
    for (root, repository, tag, image) in [
        (&roots[0], "org/app", "latest", "v2.0"),
        (&roots[0], "org/app", "v1.1", "v1.1"),
        (&roots[0], "org/app", "v1.2", "v1.2"),
        (&roots[0], "org/app", "v2.0", "v2.0"),
        (&roots[1], "org/base", "1.0", "base-1.0"),
        (&roots[1], "org/base", "latest", "base-1.0"),
    ] {
        let out = tuf(&[
            "verify",
            &format!("{addr}/{repository}:{tag}"),
            "--root",
            root,
            "--output",
            "json",
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{repository}:{tag}: {}",
            describe(&out)
        );
        let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(verdict["digest"], digest_of(image), "{repository}:{tag}");
    }

    // Tampered data is refused, naming the GUN and the role, and nothing
    // reaches the destination.
    let mirror = data.path().join("server");
    let releases = mirror.join("v2/example.com/org/app/_trust/tuf/targets/releases.json");
    let mut bytes = std::fs::read(&releases).unwrap();
    let at = bytes.windows(4).position(|w| w == b"v1.2").unwrap();
    bytes[at + 3] = b'3';
    std::fs::write(&releases, bytes).unwrap();
    let elsewhere = format!("{addr}/tampered/app");
    let out = tuf(&[
        "notary",
        "migrate",
        "--mirror",
        mirror.to_str().unwrap(),
        "--gun",
        "example.com/org/app",
        "--to",
        &elsewhere,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("example.com/org/app does not verify; nothing was migrated")
            && err.contains("targets/releases: sha256 differs"),
        "{err}"
    );
    let store = RegistryStore::new(&addr, "tampered/app", RegistryConfig::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(
        rt.block_on(RepoState::load(&store, "tuf-commit"))
            .unwrap()
            .is_none()
    );
    // A GUN the server does not have: named, with the server's answer.
    let out = tuf(&[
        "notary",
        "migrate",
        "--server",
        &server.url,
        "--server-ca",
        ca.to_str().unwrap(),
        "--gun",
        "example.com/org/none",
        "--to",
        &elsewhere,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("example.com/org/none: cannot read its trust data"),
        "{}",
        describe(&out)
    );

    // Offline, from the client's trust directory, into an image layout.
    let layout = dir.path().join("from-trust-dir");
    let out = tuf(&[
        "notary",
        "migrate",
        "--trust-dir",
        data.path().join("trust").to_str().unwrap(),
        "--gun",
        "example.com/org/app",
        "--to",
        &format!("oci:{}", layout.display()),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let state = crate::support::layout_state(Path::new(&layout));
    assert_eq!(
        state.targets["releases"].signed.targets["org/app:latest"]
            .hashes
            .by_name("sha256")
            .unwrap(),
        &digest_of("v2.0")[7..]
    );

    // Re-signed with the Notary keys that are current: the TUF root key is
    // the Notary root key, releases keeps its key.
    let reused = dir.path().join("reused");
    let out = tuf_oci_in(dir.path())
        .env("NOTARY_ROOT_PASSPHRASE", "root-passphrase-123")
        .env("NOTARY_TARGETS_PASSPHRASE", "targets-passphrase-123")
        .env("NOTARY_DELEGATION_PASSPHRASE", "delegation-passphrase-123")
        .args(["notary", "migrate", "--trust-dir"])
        .arg(data.path().join("trust"))
        .arg("--notary-keys")
        .arg(data.path().join("trust/private"))
        .args([
            "--gun",
            "example.com/org/app",
            "--to",
            &format!("oci:{}", reused.display()),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("Notary root key →")
            && said.contains("Notary targets key →")
            && said.contains("Notary targets/releases key →"),
        "{said}"
    );
    let state = crate::support::layout_state(&reused);
    let spki_of = |role: &str, md: &tuf_oci::metadata::Metadata<tuf_oci::metadata::Root>| {
        let id = &md.signed.roles[role].keyids[0];
        md.signed.keys[id].public_key().unwrap().to_spki_der()
    };
    let notary_spkis: Vec<Vec<u8>> = std::fs::read_dir(data.path().join("trust/private"))
        .unwrap()
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            text.contains("role: root").then(|| {
                tuf_oci::crypto::read_notary_key(&text, "root-passphrase-123")
                    .unwrap()
                    .key
                    .public_key()
                    .to_spki_der()
            })
        })
        .collect();
    assert!(
        notary_spkis.contains(&spki_of("root", &state.root)),
        "the TUF root key is a Notary root key"
    );
}
