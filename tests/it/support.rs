//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use tuf_oci::client::{DirectoryTransport, MetadataCache, Updater, UpdaterConfig};
use tuf_oci::crypto::Scheme;
use tuf_oci::signer::{KeySigner, Signer};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The `tuf-oci` binary under test.
pub fn tuf_oci() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tuf-oci"))
}

/// `command` run in `dir`, with `dir/home` as `TUF_OCI_HOME` and the
/// passphrase `pw` for the keys it creates.
pub fn in_dir(mut command: Command, dir: &Path) -> Command {
    command
        .current_dir(dir)
        .env("TUF_OCI_HOME", dir.join("home"))
        .env("TUF_OCI_PASSPHRASE", "pw");
    command
}

/// The `tuf-oci` binary, [`in_dir`] `dir`.
pub fn tuf_oci_in(dir: &Path) -> Command {
    in_dir(tuf_oci(), dir)
}

/// The Python interpreter with python-tuf installed: `$TUF_OCI_PYTHON`, or
/// the `.venv` that `scripts/test` creates.
pub fn python() -> PathBuf {
    let python = std::env::var_os("TUF_OCI_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "{} not found: run scripts/test (it creates the venv with python-tuf), or set TUF_OCI_PYTHON",
        python.display()
    );
    python
}

/// Run one of `tests/python/*.py`.
pub fn run_python(script: &str, args: &[&Path]) -> Output {
    Command::new(python())
        .arg(workspace().join("tests/python").join(script))
        .args(args)
        .output()
        .expect("python runs")
}

/// Stdout and stderr of a process, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A fresh signer.
pub fn signer(scheme: Scheme) -> Arc<dyn Signer> {
    Arc::new(KeySigner::generate(scheme).expect("key generation"))
}

/// A keyring of one new Ed25519 key.
pub fn ed25519_ring() -> tuf_oci::repository::RoleKeyring {
    tuf_oci::repository::RoleKeyring::single(signer(Scheme::Ed25519))
}

/// Top-level keys: one new Ed25519 key per role.
pub fn ed25519_top_level_keys() -> tuf_oci::repository::TopLevelKeys {
    tuf_oci::repository::TopLevelKeys {
        root: ed25519_ring(),
        targets: ed25519_ring(),
        snapshot: ed25519_ring(),
        timestamp: ed25519_ring(),
    }
}

/// An updater over a repository directory, trusting `root_file`.
pub fn directory_updater(
    repo: &Path,
    root_file: &Path,
    cache: &Path,
) -> Updater<DirectoryTransport> {
    let cache = MetadataCache::new(cache);
    cache
        .store("root", &std::fs::read(root_file).expect("root file"))
        .unwrap();
    Updater::new(
        cache.dir(),
        DirectoryTransport::new(repo),
        chrono::Utc::now(),
        UpdaterConfig::default(),
    )
    .expect("trusted root loads")
}

/// The pinned-root path `sign` or `init` printed (`trusted root for
/// verifiers: PATH`), after asserting the command succeeded.
pub fn trusted_root(output: &Output) -> String {
    assert!(output.status.success(), "{}", describe(output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("trusted root for verifiers: "))
        .unwrap_or_else(|| panic!("no trusted root printed: {}", describe(output)))
        .to_owned()
}

/// The current state of the TUF repository in the image layout `dir`.
pub fn layout_state(dir: &Path) -> tuf_oci::publish::RepoState {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(tuf_oci::publish::RepoState::load(
        &tuf_oci::store::LayoutStore::new(dir),
        "tuf-commit",
    ))
    .unwrap()
    .expect("a repository")
}

/// The key directory `tuf-oci` (run in `dir`, as [`in_dir`] sets it up)
/// uses for `repository` (`REGISTRY/NAME:TAG`).
pub fn key_dir_of(dir: &Path, repository: &str) -> PathBuf {
    dir.join("home/keys")
        .join(tuf_oci::client::encode_role(repository))
}
