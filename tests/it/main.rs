//! tuf-oci's integration tests: real components (python-tuf, the CLI
//! binary), started by the tests themselves.

mod cli;
mod client_workflow;
mod delegation_search;
mod doctor;
mod enforce;
mod fault_proxy;
mod http_server;
mod keys;
mod notary;
mod notary_api;
mod oci_store;
mod publish;
mod python_interop;
mod registry;
mod registry_access;
mod scale;
mod simulator;
mod support;
mod threshold;
mod timestamp_service;
mod token_issuer;
mod verify;
