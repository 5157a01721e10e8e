//! `stele-bench`: the benchmark driver (engine without HTTP, S3 load against any
//! endpoint). Its own binary so that `stelectl` links neither the engine nor RocksDB.

mod engine;
mod s3;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "stele-bench",
    version,
    about = "Measure a Stele engine or S3 endpoint"
)]
struct Cli {
    #[command(subcommand)]
    command: engine::BenchCommand,
}

fn main() -> anyhow::Result<()> {
    engine::run(Cli::parse().command)
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
