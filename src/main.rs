use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tcpscope::app::run(tcpscope::cli::Cli::parse())
}
