//! Notary v1 (Docker Content Trust): reading a notary-server or a trust
//! directory, verifying Notary's TUF dialect, and migrating the trust data
//! into a registry-native TUF repository.

mod api;
mod faithful;
mod keeper;
mod keys;
mod migrate;
mod model;
mod sign;
mod source;
mod verify;

pub use api::{ApiAnswer, answer, error_body};
pub use faithful::{OnlineKeys, faithful, resign_timestamp};
pub use keeper::{certificate_gun, faithful_expiry, is_notary_timestamp, resign_faithful};
pub use keys::{CertificateInfo, DecodedKey, decode, key_id};
pub use migrate::{MigratedTag, MigrationPlan, plan, tuf_role_name};
pub use model::{
    NotaryDelegatedRole, NotaryDelegations, NotaryFile, NotaryKey, NotaryKeyVal, NotaryMeta,
    NotaryMetaRole, NotaryRoleKeys, NotaryRoot, NotarySignature, NotaryTarget, NotaryTargets,
    parse_expires,
};
pub use sign::{
    meta_entry, next_root, notary_public_key, sign_file, snapshot_and_timestamp, timestamp_for,
};
pub use source::{ServerOptions, fetch, read_mirror, read_trust_dir};
pub use verify::{NotaryRepository, NotaryTargetInfo, VerifiedNotary, VerifiedRole, verify};

/// Why Notary trust data could not be read, verified or migrated.
#[derive(Debug, thiserror::Error)]
pub enum NotaryError {
    /// A file is not valid Notary metadata.
    #[error("{role}: {reason}")]
    Invalid {
        /// The role.
        role: String,
        /// What is wrong.
        reason: String,
    },
    /// The trust data does not verify.
    #[error("{gun}: {role}: {reason}")]
    Untrusted {
        /// The GUN.
        gun: String,
        /// The role.
        role: String,
        /// What failed.
        reason: String,
    },
    /// It could not be read.
    #[error("{0}")]
    Fetch(String),
}

#[cfg(test)]
mod tests;
