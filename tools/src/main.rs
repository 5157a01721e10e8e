//! `stelectl`: the Stele admin/auditor CLI. It speaks the admin API over HTTP or HTTPS
//! (checking the node's certificate by CA file or pinned fingerprint) and links neither
//! the engine nor RocksDB; the benchmarks are `stele-bench`.

mod admin;
mod ctl;
mod tls;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "stelectl",
    version,
    about = "Administer and measure a Stele node"
)]
struct Cli {
    #[command(flatten)]
    admin: ctl::AdminOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Admin(ctl::AdminCommand),
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Admin(c) => Ok(ctl::run(c, cli.admin)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
