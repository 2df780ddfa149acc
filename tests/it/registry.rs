//! A real OCI registry (Debian's `docker-registry`, CNCF distribution 2.8)
//! started by a test on a free 127.0.0.1 port, storage on tmpfs, stopped and
//! removed on drop.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the registry authenticates.
pub enum Auth<'a> {
    /// No authentication.
    None,
    /// htpasswd basic authentication for one user.
    Basic { user: &'a str, password: &'a str },
    /// Bearer tokens signed by the key of `cert` (PEM), from `realm`.
    Token { cert: &'a Path, realm: &'a str },
    /// No authentication, HTTPS with this certificate and key (PEM).
    Tls { cert: &'a Path, key: &'a Path },
}

/// A running registry.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    child: Child,
    config_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// Start a registry (that allows DELETE).
    pub fn start(auth: Auth<'_>) -> Self {
        Self::start_with(auth, true)
    }

    /// Start a registry; `delete`: whether it allows DELETE.
    pub fn start_with(auth: Auth<'_>, delete: bool) -> Self {
        let base = if Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        };
        let dir = tempfile::Builder::new()
            .prefix("tuf-oci-registry-")
            .tempdir_in(base)
            .unwrap();
        let auth_block = match auth {
            Auth::None => String::new(),
            Auth::Basic { user, password } => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("htpasswd runs");
                assert!(out.status.success(), "htpasswd failed");
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                    file.display()
                )
            }
            Auth::Tls { cert, key } => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ),
            Auth::Token { cert, realm } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                cert.display()
            ),
        };
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let config = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: {delete}\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {addr}\n  secret: test-only\n{auth_block}",
                dir.path().join("data").display()
            );
            let config_file = dir.path().join("config.yml");
            std::fs::write(&config_file, config).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config_file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("docker-registry is installed (scripts/test installs it)");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(&addr).is_ok() {
                    return Self {
                        addr,
                        child,
                        config_file,
                        _dir: dir,
                    };
                }
                if child.try_wait().unwrap().is_some() {
                    break; // port taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start");
    }
}

impl Registry {
    /// Stop serving (an outage); the data stays.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Serve again after [`stop`](Self::stop), on the same address and data.
    pub fn restart(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            self.child = Command::new("docker-registry")
                .arg("serve")
                .arg(&self.config_file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("docker-registry starts");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(2) {
                if std::net::TcpStream::connect(&self.addr).is_ok() {
                    return;
                }
                if self.child.try_wait().unwrap().is_some() {
                    break; // the port is not free yet: try again
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        panic!("docker-registry did not restart on {}", self.addr);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
