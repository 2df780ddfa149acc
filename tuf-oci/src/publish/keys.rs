//! The signers a publisher holds, by role.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::PublishError;
use crate::client::encode_role;
use crate::signer::{self, KeyRef, Signer, SignerOptions};

/// Signers by role name.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    signers: BTreeMap<String, Vec<Arc<dyn Signer>>>,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sign `role` with `signer` too.
    pub fn add(&mut self, role: &str, signer: Arc<dyn Signer>) {
        let list = self.signers.entry(role.to_owned()).or_default();
        if !list.iter().any(|s| s.key_id() == signer.key_id()) {
            list.push(signer);
        }
    }

    /// The signers of `role`. A hashed bin (`PREFIX-HEX`) without signers
    /// of its own has those added for `PREFIX-*`: one key signs every bin.
    pub fn signers(&self, role: &str) -> Vec<Arc<dyn Signer>> {
        if let Some(list) = self.signers.get(role) {
            return list.clone();
        }
        role.rsplit_once('-')
            .filter(|(_, hex)| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
            .and_then(|(prefix, _)| self.signers.get(&format!("{prefix}-*")))
            .cloned()
            .unwrap_or_default()
    }

    /// The key file of `role` in a key directory: `DIR/ROLE.pem` (the role
    /// name percent-encoded).
    pub fn key_file(dir: &Path, role: &str) -> std::path::PathBuf {
        dir.join(format!("{}.pem", encode_role(role)))
    }

    /// Open every `ROLE.pem` in `dir`, and every `ROLE=REF` in `overrides`
    /// (which replace the directory's key for that role).
    pub async fn open(
        dir: Option<&Path>,
        overrides: &[(String, String)],
        options: &SignerOptions,
    ) -> Result<Self, PublishError> {
        let mut keyring = Self::new();
        let overridden: Vec<&str> = overrides.iter().map(|(r, _)| r.as_str()).collect();
        if let Some(dir) = dir.filter(|d| d.is_dir()) {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| PublishError::State(format!("cannot list {}: {e}", dir.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "pem"))
                .collect();
            entries.sort();
            for path in entries {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                let role = percent_encoding::percent_decode_str(&stem)
                    .decode_utf8_lossy()
                    .into_owned();
                if overridden.contains(&role.as_str()) {
                    continue;
                }
                let signer = signer::open(&KeyRef::File(path), options).await?;
                keyring.add(&role, signer);
            }
        }
        for (role, reference) in overrides {
            let signer = signer::open(&KeyRef::parse(reference)?, options).await?;
            keyring.add(role, signer);
        }
        Ok(keyring)
    }
}
