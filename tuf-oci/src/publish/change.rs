//! The changes a publisher makes, replayable on a newer base (so that a
//! commit that lost a race can be rebased).

use chrono::{DateTime, Duration, Utc};

use crate::crypto::hash::HashAlgorithm;
use crate::image::{ImageRef, alias_target_name};
use crate::metadata::{Key, KeyId, TargetFile};

/// One change to a repository.
#[derive(Debug, Clone)]
pub enum Change {
    /// Add or replace a target in `role` (the role the target's name is
    /// delegated to when `None`).
    AddTarget {
        /// Target name (`org/app:1.0`).
        name: String,
        /// Its description.
        file: TargetFile,
        /// The role to list it in.
        role: Option<String>,
    },
    /// Add or replace many targets at once (an import): as many
    /// [`AddTarget`](Self::AddTarget)s, kept as one list (a change per
    /// target of a 100,000-target import was a second copy of the list).
    AddTargets {
        /// Target names and descriptions, in name order, one per name.
        targets: Vec<(String, TargetFile)>,
        /// The role to list them in (else each in the role its name is
        /// delegated to).
        role: Option<String>,
    },
    /// Remove a target from whichever role lists it.
    RemoveTarget {
        /// Target name.
        name: String,
    },
    /// Delegate `paths` from `delegator` to a new role with one key.
    AddDelegation {
        /// The delegating role.
        delegator: String,
        /// The new role.
        name: String,
        /// Its public key (boxed: a change list of 100,000 targets is a
        /// list of this enum, sized by its largest variant).
        key: Box<Key>,
        /// Path patterns (`org/app:*`).
        paths: Vec<String>,
        /// Whether the search stops at this role.
        terminating: bool,
    },
    /// Delegate everything `delegator` delegates to `count` succinct hashed
    /// bins (TAP 15) named `PREFIX-HEX`, signed by one key. The
    /// delegator's own targets move into their bins; later targets land in
    /// their bin by themselves.
    AddBins {
        /// The delegating role (with no delegations yet).
        delegator: String,
        /// How many bins: a power of two, 2 to 65,536.
        count: u64,
        /// Bin name prefix.
        name_prefix: String,
        /// The key every bin is signed with.
        key: Box<Key>,
    },
    /// Remove a delegated role (and its targets).
    RemoveDelegation {
        /// The role.
        name: String,
    },
    /// Change the keys of a role: add keys, remove (revoke) keys, set the
    /// threshold. A top-level role's keys live in root, so root gets a new
    /// version (signed by a threshold of the old and of the new root keys);
    /// a delegated role's keys live in its delegator, which is re-signed.
    /// The role itself is re-signed too, by its new keys (snapshot and
    /// timestamp are re-signed by every commit anyway). For hashed bins,
    /// naming any bin changes the keys of all of them.
    RotateKeys {
        /// The role.
        role: String,
        /// Keys to add.
        add: Vec<Key>,
        /// Key IDs to remove.
        remove: Vec<KeyId>,
        /// The new threshold (unchanged when `None`).
        threshold: Option<u32>,
    },
    /// Re-sign a role: a new version with a new expiry. For root that is a
    /// new root version, signed with the root keys. Snapshot and timestamp
    /// are re-signed by every commit, so naming them re-signs just those.
    Resign {
        /// The role.
        role: String,
    },
}

impl Change {
    /// The changes that sign an image: its `PATH:TAG` target and the
    /// `PATH@sha256:HEX` alias that digest references are looked up by.
    pub fn add_image(image: &ImageRef, file: TargetFile, role: Option<String>) -> Vec<Change> {
        let mut changes = vec![Change::AddTarget {
            name: image.target_name(),
            file: file.clone(),
            role: role.clone(),
        }];
        if let Some(hex) = file.hashes.get(HashAlgorithm::Sha256) {
            changes.push(Change::AddTarget {
                name: alias_target_name(&image.path, hex),
                file: file.clone(),
                role,
            });
        }
        changes
    }
}

/// How long re-signed metadata stays valid: the builder's [`Expiries`](crate::repository::Expiries)
/// (root 365 days, targets roles 90, snapshot 7, timestamp 1 by default).
pub type Validity = crate::repository::Expiries;

/// `now + d`, whole seconds (the expiry format has no fractions).
pub(super) fn expiry(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    let t = now + d;
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}
