//! The advisory lease that serialises cooperating publishers.
//!
//! Registries offer no compare-and-swap, so the lease is a tag
//! (`COMMIT-TAG.lease`) pointing at a small manifest naming its holder and
//! expiry. Acquiring it: see it free (absent, expired or released), write
//! ours, wait the settle time, and read it back. A publisher that took
//! longer than half the settle time between seeing the lease free and
//! writing starts over. With those two rules, two publishers cannot both
//! read their own lease back (see `spec/tuf-on-oci.md` §4.1 for the
//! argument and its assumptions).
//!
//! A store on this machine (an image layout) has a better tool: an OS lock
//! on a file beside it, held for the whole publish, with no settle wait.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use oci_spec::image::Digest;
use serde_json::{Value, json};

use super::PublishError;
use crate::store::MAX_MANIFEST_LEN;
use crate::store::{MEDIA_TYPE_MANIFEST, Reference, Store, StoreError, sha256_digest};

/// `artifactType` of a lease manifest.
pub const ARTIFACT_TYPE_LEASE: &str = "application/vnd.tuf-oci.lease.v1";

/// Lease timing.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// Who holds it (shown to others who wait).
    pub holder: String,
    /// How long a lease lasts: a crashed publisher blocks others this long
    /// (default 60 s).
    pub ttl: Duration,
    /// Wait between writing the lease and reading it back (default 200 ms).
    pub settle: Duration,
    /// How long to wait for another holder (default 120 s).
    pub wait: Duration,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        Self {
            holder: format!("{}:{}", host.trim(), std::process::id()),
            ttl: Duration::from_secs(60),
            settle: Duration::from_millis(200),
            wait: Duration::from_secs(120),
        }
    }
}

/// A held lease.
#[derive(Debug)]
pub struct Lease {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// The lease tag names our lease manifest.
    Tag {
        tag: String,
        digest: Digest,
        expires: DateTime<Utc>,
    },
    /// We hold the OS lock on the store's publisher lock file.
    File(std::fs::File),
}

/// The lease tag of a commit tag.
pub fn lease_tag(commit_tag: &str) -> String {
    format!("{commit_tag}.lease")
}

fn nonce() -> Result<String, PublishError> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| PublishError::State("the system random number generator failed".into()))?;
    Ok(hex::encode(b))
}

/// The lease `tag` points at now: (digest, holder, expiry), if any.
async fn current<S: Store>(
    store: &S,
    tag: &str,
) -> Result<Option<(Digest, String, DateTime<Utc>)>, PublishError> {
    match store
        .get_manifest(&Reference::Tag(tag.to_owned()), MAX_MANIFEST_LEN)
        .await
    {
        Ok(m) => {
            let v: Value = serde_json::from_slice(&m.bytes).unwrap_or_default();
            let holder = v["annotations"]["tuf-oci.lease.holder"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let expires = v["annotations"]["tuf-oci.lease.expires"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            Ok(Some((m.digest, holder, expires)))
        }
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl Lease {
    /// Take the lease on `commit_tag`, waiting for another holder.
    pub async fn acquire<S: Store>(
        store: &S,
        commit_tag: &str,
        options: &LeaseOptions,
    ) -> Result<Self, PublishError> {
        if let Some(path) = store.publisher_lock_file() {
            return Self::lock_file(&path, options).await;
        }
        let tag = lease_tag(commit_tag);
        let deadline = Instant::now() + options.wait;
        store.put_blob(b"{}").await?;
        loop {
            let seen = Instant::now();
            if let Some((_, holder, expires)) = current(store, &tag).await?
                && expires > Utc::now()
            {
                // Give up only on a lease that is held now.
                if Instant::now() > deadline {
                    return Err(PublishError::Busy(format!("{holder} until {expires}")));
                }
                tracing::debug!(%holder, %expires, "lease held");
                tokio::time::sleep(options.settle / 4 + Duration::from_millis(5)).await;
                continue;
            }
            let expires = Utc::now()
                + chrono::Duration::from_std(options.ttl).unwrap_or(chrono::Duration::seconds(60));
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_TYPE_MANIFEST,
                "artifactType": ARTIFACT_TYPE_LEASE,
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256_digest(b"{}").to_string(), "size": 2},
                "layers": [],
                "annotations": {
                    "tuf-oci.lease.holder": options.holder,
                    "tuf-oci.lease.expires": expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "tuf-oci.lease.nonce": nonce()?,
                },
            });
            let bytes = serde_json::to_vec(&manifest).expect("a lease serializes");
            let digest = store
                .put_manifest(&Reference::Tag(tag.clone()), MEDIA_TYPE_MANIFEST, &bytes)
                .await?;
            if seen.elapsed() > options.settle / 2 {
                // Too slow between seeing it free and writing: another
                // publisher may have seen it free too. Withdraw ours (so it
                // does not block anyone, us included) and start over.
                let _ = store.delete_manifest(&digest).await;
                if Instant::now() > deadline {
                    return Err(PublishError::State(format!(
                        "{}: the registry took longer than {} ms to store the lease, every time until the deadline; nothing was committed",
                        store.location(),
                        (options.settle / 2).as_millis()
                    )));
                }
                continue;
            }
            tokio::time::sleep(options.settle).await;
            if current(store, &tag)
                .await?
                .is_some_and(|(d, _, _)| d == digest)
            {
                return Ok(Self {
                    kind: Kind::Tag {
                        tag,
                        digest,
                        expires,
                    },
                });
            }
        }
    }

    /// Take the OS lock on `path`, waiting for another holder; the file
    /// names the holder, for whoever waits.
    async fn lock_file(
        path: &std::path::Path,
        options: &LeaseOptions,
    ) -> Result<Self, PublishError> {
        use std::io::{Read, Seek, Write};
        let io = |e: std::io::Error| PublishError::State(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let deadline = Instant::now() + options.wait;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    return Err(PublishError::Busy(format!(
                        "{}, lock file {}",
                        holder.trim(),
                        path.display()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{} since {}", options.holder, Utc::now().to_rfc3339()).map_err(io)?;
        Ok(Self {
            kind: Kind::File(file),
        })
    }

    /// Whether the lease is still ours and has time left.
    pub async fn check<S: Store>(&self, store: &S) -> Result<(), PublishError> {
        let Kind::Tag {
            tag,
            digest,
            expires,
        } = &self.kind
        else {
            return Ok(()); // An OS lock is held until released.
        };
        let margin = chrono::Duration::seconds(1);
        match current(store, tag).await? {
            Some((d, _, _)) if &d == digest && Utc::now() + margin < *expires => Ok(()),
            Some((_, holder, _)) => Err(PublishError::LeaseLost(holder)),
            None => Err(PublishError::LeaseLost("nobody (released)".into())),
        }
    }

    /// Give the lease up: delete our lease manifest (which removes the tag
    /// only while it still points at ours), or unlock the lock file.
    pub async fn release<S: Store>(self, store: &S) {
        match self.kind {
            Kind::Tag {
                digest, expires, ..
            } => {
                if let Err(e) = store.delete_manifest(&digest).await {
                    tracing::warn!(error = %e, "could not release the lease; it expires at {expires}");
                }
            }
            Kind::File(file) => {
                let _ = file.unlock();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LayoutStore;

    fn options(holder: &str) -> LeaseOptions {
        LeaseOptions {
            holder: holder.to_owned(),
            ttl: Duration::from_secs(60),
            settle: Duration::from_millis(20),
            wait: Duration::from_millis(100),
        }
    }

    #[tokio::test]
    async fn a_held_lease_names_its_holder_and_a_released_one_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::new(dir.path());
        let first = Lease::acquire(&store, "tuf-commit", &options("ci-1"))
            .await
            .unwrap();
        let err = Lease::acquire(&store, "tuf-commit", &options("ci-2"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds the lease (ci-1 since "), "{err}");
        first.release(&store).await;
        let second = Lease::acquire(&store, "tuf-commit", &options("ci-2"))
            .await
            .unwrap();
        second.check(&store).await.unwrap();
    }
}
