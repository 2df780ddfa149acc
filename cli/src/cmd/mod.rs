//! Command-line definitions and dispatch.

mod admission;
mod change;
mod client;
mod demo;
mod expire;
mod inspect;
mod key;
mod notary;
mod notary_api;
mod prune;
mod publish;
mod timestamp;
mod tls;
mod verify;

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
    /// Create a TUF repository (generating any missing top-level key).
    ///
    /// Example: tuf-oci init --repository oci:./store
    Init {
        /// Targets the first commit holds already: a JSON map like a
        /// targets role's `targets`, or a directory (as `target import`).
        #[arg(long, value_name = "FILE|DIR")]
        targets: Option<std::path::PathBuf>,
        /// Delegate `targets` to COUNT succinct hashed bins `bins-HEX`
        /// (TAP 15) from the first commit, as `delegate bins` does: the
        /// targets land in their bins. A power of two from 2 to 65536.
        #[arg(long, value_name = "COUNT", requires = "bins_key")]
        bins: Option<u64>,
        /// The bins' key (any key reference), with --bins.
        #[arg(long, value_name = "REF", requires = "bins")]
        bins_key: Option<String>,
        #[command(flatten)]
        repo: publish::RepoArgs,
    },
    /// Sign images: create the repository on first use, add the images'
    /// digests as targets, commit.
    ///
    /// Example: tuf-oci sign oci:./store:1.0
    Sign {
        /// Images: `oci:DIR:TAG` or `[REGISTRY/]NAME:TAG`.
        #[arg(required = true)]
        images: Vec<String>,
        #[command(flatten)]
        repo: publish::RepoArgs,
    },
    /// Add, remove or list targets.
    Target {
        #[command(subcommand)]
        command: publish::TargetCommand,
        #[command(flatten)]
        repo: publish::RepoArgs,
    },
    /// Add or remove delegated roles.
    Delegate {
        #[command(subcommand)]
        command: publish::DelegateCommand,
        #[command(flatten)]
        repo: publish::RepoArgs,
    },
    /// Check that the registry serves exactly the image digest trusted TUF
    /// metadata names. Exit status: 0 trusted, 1 not trusted, 2 error.
    ///
    /// Example: tuf-oci verify oci:./store:1.0 --root ~/.tuf-oci/keys/…/root.json
    Verify(verify::Args),
    /// Copy a TUF repository and the images its targets name to another
    /// registry or layout; digests are kept, so the copy verifies with the
    /// same root.
    ///
    /// Example: tuf-oci copy oci:./store registry.example.com/store
    Copy {
        /// Source repository: `oci:DIR[:TAG]` or `REGISTRY/NAME[:TAG]`.
        from: String,
        /// Destination repository (keep the repository's name: target names
        /// carry it).
        to: String,
    },
    /// Print the trusted digest reference of an image (`NAME@sha256:…`),
    /// for deploy pipelines to pin. Exit status as for verify.
    ///
    /// Example: tuf-oci resolve registry.example.com/org/app:1.0
    Resolve(verify::Args),
    /// Show every role's expiry, or re-sign roles with a new one.
    Expire {
        #[command(subcommand)]
        command: expire::ExpireCommand,
        #[command(flatten)]
        repo: publish::RepoArgs,
    },
    /// Change a role's keys or threshold now: add keys, remove (revoke)
    /// keys. Every key the new versions need must be at hand; otherwise
    /// use `change stage rotate`.
    ///
    /// Example: tuf-oci rotate targets --add-key new-targets.pem --remove-key 3a7f… --repository oci:./store
    Rotate {
        #[command(flatten)]
        rotate: change::RotateArgs,
        #[command(flatten)]
        repo: publish::RepoArgs,
    },
    /// Threshold and offline signing: stage a change, sign it with each key
    /// holder's keys, commit it when every threshold is met.
    Change {
        #[command(subcommand)]
        command: change::ChangeCommand,
        #[command(flatten)]
        repo: publish::RepoArgs,
    },
    /// Delete the manifests and blobs of repository states older than the
    /// newest --keep (root files and anything a tag names are kept).
    ///
    /// Example: tuf-oci prune --keep 5 --repository registry.example.com/org/trust
    Prune {
        #[command(flatten)]
        prune: prune::PruneArgs,
        #[command(flatten)]
        repo: publish::RepoArgs,
    },
    /// Re-sign the timestamp (and the snapshot, with its key at hand) now,
    /// or run the timestamp service (`timestamp serve`).
    ///
    /// Example: tuf-oci timestamp --if-within 6h --repository registry.example.com/org/trust
    Timestamp {
        #[command(flatten)]
        args: timestamp::Args,
        #[command(flatten)]
        repo: publish::RepoArgs,
    },
    /// The whole repository at a glance: every role's version, expiry,
    /// threshold, keys and valid signatures, delegation paths, target
    /// counts; `--role NAME` for one role and its targets.
    ///
    /// Example: tuf-oci inspect registry.example.com/org/trust --output json
    Inspect(inspect::InspectArgs),
    /// Run the client workflow step by step and explain the first failure
    /// in plain words, with how to fix it; warn about what will fail soon.
    /// Exit status: 0 healthy, 1 a failure found, 2 the check could not be
    /// made.
    ///
    /// Example: tuf-oci doctor registry.example.com/org/trust registry.example.com/org/app:1.0
    Doctor(inspect::DoctorArgs),
    /// Enforce at admission: the Kubernetes webhook (validating and
    /// mutating) and Gatekeeper external data, over HTTPS.
    Admission(admission::Args),
    /// Docker Content Trust (Notary v1): migrate trust data into the
    /// registry.
    Notary {
        #[command(flatten)]
        args: notary::Args,
        #[command(flatten)]
        repo: publish::RepoArgs,
    },
    /// Serve the Notary v1 HTTP API (read only) from faithful migrations, for
    /// Docker Content Trust clients and notary scripts not yet switched.
    NotaryApi(notary_api::Args),
    /// What the repository holds, and which keys are at hand.
    ///
    /// Example: tuf-oci status --repository oci:./store
    Status(publish::RepoArgs),
}

impl Cli {
    /// Run the chosen command; the process's exit status.
    pub async fn run(self) -> anyhow::Result<u8> {
        let done = match self.command {
            // verify chooses its own exit status (0, 1 or 2).
            Command::Verify(args) => return Ok(verify::run(args, false).await),
            Command::Resolve(args) => return Ok(verify::run(args, true).await),
            Command::Client(args) => client::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Key(args) => key::run(args).await,
            Command::Init {
                targets,
                bins,
                bins_key,
                repo,
            } => publish::init(repo, targets, bins.zip(bins_key)).await,
            Command::Sign { images, repo } => publish::sign(repo, images).await,
            Command::Target { command, repo } => publish::target(repo, command).await,
            Command::Delegate { command, repo } => publish::delegate(repo, command).await,
            Command::Status(args) => inspect::status(args).await,
            Command::Admission(args) => admission::run(args).await,
            Command::Notary { args, repo } => notary::run(repo, args).await,
            Command::NotaryApi(args) => notary_api::run(args).await,
            Command::Inspect(args) => inspect::inspect(args).await,
            Command::Doctor(args) => return Ok(inspect::doctor(args).await),
            Command::Expire { command, repo } => expire::expire(repo, command).await,
            Command::Copy { from, to } => publish::copy(from, to).await,
            Command::Timestamp { args, repo } => timestamp::run(repo, args).await,
            Command::Prune { prune, repo } => prune::prune(repo, prune).await,
            Command::Rotate { rotate, repo } => change::rotate(repo, rotate).await,
            Command::Change { command, repo } => change::change(repo, command).await,
        };
        done.map(|()| 0)
    }
}
