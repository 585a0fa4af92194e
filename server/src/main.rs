//! The `fathom` binary: one subcommand per job, each a thin layer over the
//! libraries.

#![forbid(unsafe_code)]
// Input never panics the process: errors are returned (tests may unwrap).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use clap::Parser;
use fathom_server::{cli, ops::logging};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if matches!(args.command, cli::Command::Serve(_) | cli::Command::Route(_)) {
        fathom_server::ops::malloc_env::ensure_fixed_mmap_threshold();
    }
    // A server says what it is doing (config, index, ready, shutdown); the
    // batch commands stay quiet unless asked.
    let default_level =
        if matches!(args.command, cli::Command::Serve(_) | cli::Command::Route(_)) { "info" } else { "warn" };
    logging::init(args.log_json || logging::json_from_env(), default_level);
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
