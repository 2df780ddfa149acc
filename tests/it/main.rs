//! tuf-oci's integration tests: real components (python-tuf, the CLI
//! binary), started by the tests themselves.

mod cli;
mod client_workflow;
mod http_server;
mod python_interop;
mod simulator;
mod support;
