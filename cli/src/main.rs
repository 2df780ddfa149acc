//! `tuf-oci`: The Update Framework, native to OCI registries.
//!
//! This binary only parses arguments, calls the library and reports. Exit
//! status: 0 success, 1 failure; `verify` and `resolve` use 0 trusted,
//! 1 not trusted, 2 the check could not be made.

mod cmd;

// Parsing large metadata is allocation-bound; mimalloc makes it markedly
// faster than glibc malloc (see the README's performance section).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Output piped into `head` and closed early ends the process quietly,
    // as for other command-line tools, instead of a print panic.
    #[cfg(unix)]
    // SAFETY: called first in main, before any other thread exists; it
    // only restores the default disposition of SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Every failure exits 1, usage errors included (clap's default is 2);
    // --help and --version exit 0.
    let cli = match cmd::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
            let _ = e.print();
            return code;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TUF_OCI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A panic is a bug, but it must still exit 1, not 101.
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(cli.run())));
    let code = match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            1
        }
        Err(_) => 1,
    };
    // The work is done: its output is flushed, and the process leaves at
    // once. Tearing the runtime and the heap down piece by piece (the
    // allocator's exit handler hands every page back to the system) takes
    // milliseconds for a big repository; the process's end frees it all.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let _ = std::io::Write::flush(&mut std::io::stderr());
    // SAFETY: `_exit` ends the process without running exit handlers or
    // destructors; nothing is left to write (standard output is flushed,
    // files are written and renamed by now, standard error is unbuffered).
    unsafe { libc::_exit(i32::from(code)) }
}
