//! tuf-oci: The Update Framework (TUF), native to OCI registries.
//!
//! Layers, bottom up; each module uses only modules above it in this list:
//! - [`atomic`]: atomic file writes;
//! - [`crypto`]: keys, signatures and hashes (ring), key files;
//! - [`metadata`]: the TUF metadata model and its canonical JSON;
//! - [`signer`]: the one signing abstraction, and its key sources (files,
//!   environment variables, PKCS#11, external plugins);
//! - [`repository`]: building and signing a whole repository in memory;
//! - [`net`]: the HTTP client setup every network path shares;
//! - [`client`]: the TUF client workflow (trusted set, updater, transports);
//! - [`store`]: OCI content storage (image layouts, registries);
//! - [`oci`]: TUF files ↔ OCI objects, as `spec/tuf-on-oci.md` defines them;
//! - [`image`]: image references and target names;
//! - [`policy`]: the trust policy file;
//! - [`publish`]: publishing: state, changes, lease, transactional commit;
//! - [`verify`]: verdicts on images against a TUF repository.
#![warn(missing_docs)]

pub mod atomic;
pub mod client;
pub mod crypto;
pub mod enforce;
pub mod image;
pub mod inspect;
pub mod metadata;
pub mod net;
pub mod notary;
pub mod oci;
pub mod policy;
pub mod publish;
pub mod repository;
pub mod service;
pub mod signer;
pub mod store;
pub mod token;
pub mod verify;

mod parallel;

#[cfg(test)]
mod fuzz;
