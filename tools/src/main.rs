//! `stelectl`: the Stele admin/auditor CLI and benchmark driver.

mod admin;
mod bench;
mod ctl;

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
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    #[command(flatten)]
    Admin(ctl::AdminCommand),
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(b) => bench::run(b).map(|()| ExitCode::SUCCESS),
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
