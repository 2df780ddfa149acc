//! A whole TUF repository in memory: built and signed by
//! [`RepositoryBuilder`], written in the standard layout by
//! [`Repository::write_layout`].

mod builder;
mod layout;

pub use builder::{
    BinsSpec, DelegationSpec, Expiries, RepositoryBuilder, RoleKeyring, TopLevelKeys,
};
pub use layout::{LayoutError, metadata_file_name, target_file_names};

use std::collections::BTreeMap;

use crate::metadata::{Metadata, Root, Snapshot, Targets, Timestamp};

/// A signed repository: every root version, the current top-level roles,
/// every delegated role, and the contents of targets that have content.
#[derive(Debug, Clone)]
pub struct Repository {
    /// Every root version, oldest first (`N.root.json` is `root_history[N-1]`).
    pub root_history: Vec<Metadata<Root>>,
    /// `timestamp.json`.
    pub timestamp: Metadata<Timestamp>,
    /// `snapshot.json`.
    pub snapshot: Metadata<Snapshot>,
    /// `targets.json`.
    pub targets: Metadata<Targets>,
    /// Delegated targets roles by name.
    pub delegated: BTreeMap<String, Metadata<Targets>>,
    /// Target contents by target path, for targets that have content.
    pub target_contents: BTreeMap<String, Vec<u8>>,
}

impl Repository {
    /// The current root.
    pub fn root(&self) -> &Metadata<Root> {
        self.root_history
            .last()
            .expect("a repository has at least one root")
    }

    /// Every metadata file with its consistent-snapshot file name
    /// (`N.root.json`, `timestamp.json`, `N.snapshot.json`, `N.ROLE.json`)
    /// and bytes.
    pub fn metadata_files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = self
            .root_history
            .iter()
            .map(|r| {
                (
                    metadata_file_name("root", Some(r.signed.version)),
                    r.to_bytes(),
                )
            })
            .collect();
        files.push(("timestamp.json".into(), self.timestamp.to_bytes()));
        files.push((
            metadata_file_name("snapshot", Some(self.snapshot.signed.version)),
            self.snapshot.to_bytes(),
        ));
        files.push((
            metadata_file_name("targets", Some(self.targets.signed.version)),
            self.targets.to_bytes(),
        ));
        for (name, role) in &self.delegated {
            files.push((
                metadata_file_name(name, Some(role.signed.version)),
                role.to_bytes(),
            ));
        }
        files
    }
}
