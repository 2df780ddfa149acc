//! Command-line definitions and dispatch.

mod client;
mod demo;
mod key;

use clap::{Parser, Subcommand};

/// TUF repositories that live in OCI registries.
#[derive(Debug, Parser)]
#[command(name = "tuf-oci", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A TUF client for standard HTTP repositories (the tuf-conformance
    /// client protocol).
    Client(client::Args),
    /// Build, sign and verify a sample repository in a directory.
    Demo(demo::Args),
    /// Manage signing keys: files, CI variables, PKCS#11 tokens, plugins.
    Key(key::Args),
}

impl Cli {
    /// Run the chosen command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Client(args) => client::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Key(args) => key::run(args).await,
        }
    }
}
