//! tuf-oci: The Update Framework (TUF), native to OCI registries.
//!
//! Layers, bottom up (each depends only on the ones above it in this list):
//! - [`crypto`]: keys, signatures and hashes;
//! - [`metadata`]: the TUF metadata model and its canonical JSON;
//! - [`signer`]: the one signing abstraction every signing path goes through;
//! - [`repository`]: building and signing a whole repository in memory and
//!   writing it in the standard TUF layout.
#![warn(missing_docs)]

pub mod atomic;
pub mod client;
pub mod crypto;
pub mod image;
pub mod metadata;
pub mod net;
pub mod oci;
pub mod policy;
pub mod publish;
pub mod repository;
pub mod signer;
pub mod store;
pub mod verify;

#[cfg(test)]
mod fuzz;
