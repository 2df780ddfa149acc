//! The TUF 1.0 metadata model and its canonical JSON.
//!
//! Types mirror the specification's JSON objects field for field (so each
//! role repeats the common `_type`, `spec_version`, `version`, `expires`
//! header rather than flattening it in); fields this implementation does not
//! know are kept (`unrecognized`) and written back.
//! [`Metadata`] is the signed envelope: parsing keeps the OLPC canonical bytes
//! of `signed` exactly as received, and those bytes are what signatures are
//! checked over, unknown fields included.

pub(crate) mod canonical;
pub(crate) mod canonical_check;
mod canonical_writer;
mod common;
mod delegation;
mod envelope;
mod error;
mod fields;
mod hashes;
mod key;
mod root;
mod snapshot;
mod targets;
mod timestamp;

pub use canonical::{CanonicalError, MAX_METADATA_LEN, canonicalize, escape_control_characters};
pub use canonical_writer::to_canonical_json;
pub use common::{Role, RoleType, SPEC_VERSION, SpecVersion};
pub use delegation::{DelegatedRole, Delegations, SuccinctRoles};
pub use envelope::{Metadata, Signature};
pub use error::{Error, ErrorKind};
pub use fields::Entries;
pub use hashes::Hashes;
pub use key::{Key, KeyId, KeyVal};
pub use root::{RoleKeys, Root, TOP_LEVEL_ROLES};
pub use snapshot::{MetaFile, Snapshot};
pub use targets::{MIN_TARGET_LEN, TargetFile, Targets};
pub use timestamp::Timestamp;

/// Fields of a JSON object that the model does not know, kept verbatim.
pub type Unrecognized = std::collections::BTreeMap<String, serde_json::Value>;

#[cfg(test)]
mod tests;
