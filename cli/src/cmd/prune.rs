//! `tuf-oci prune`: delete the objects of old repository states.

use tuf_oci::publish;

use super::publish::{RepoArgs, open_store, options};

/// `prune`'s arguments.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// How many states to keep, the current one included.
    #[arg(long, default_value_t = 10)]
    keep: usize,
}

/// `tuf-oci prune`.
pub async fn prune(args: RepoArgs, prune: PruneArgs) -> anyhow::Result<()> {
    let reference = args.reference(None)?;
    let store = open_store(&reference)?;
    let dry_run = args.dry_run();
    let report = publish::prune(&store, prune.keep, dry_run, &options(&args, &reference)).await?;
    let verb = if dry_run { "would delete" } else { "deleted" };
    println!(
        "{reference}: kept {} state(s); {verb} {} older state(s): {} manifest(s), {} blob(s), {} bytes",
        report.states_kept,
        report.states_pruned,
        report.manifests_deleted,
        report.blobs_deleted,
        report.bytes_freed
    );
    Ok(())
}
