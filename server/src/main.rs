//! `stele-server`: one Stele node. With no flags it serves an embedded default: six disk
//! directories under `./stele-data`, erasure coding 4+2, metadata in embedded RocksDB.

use std::process::ExitCode;

use clap::Parser;
use stele_server::args::Args;

/// mimalloc instead of glibc's allocator: a request allocates many small buffers on many
/// threads, where glibc's arenas spent 7-10% of the server's CPU on a small PUT
/// (BENCHMARKS.md, "The audit trail's cost on PUT").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STELE_LOG")
                // openraft's INFO lines dump its whole state at every change.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match args.node_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("stele-server: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stele-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = rt.block_on(stele_server::serve(args, config));
    // A pass a worker left behind at its exit deadline is not waited for again here.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stele-server: {e:#}");
            ExitCode::from(2)
        }
    }
}
