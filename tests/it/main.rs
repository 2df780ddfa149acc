//! tuf-oci's integration tests: real components (python-tuf, the CLI
//! binary), started by the tests themselves.

mod cli;
mod python_interop;
mod support;
