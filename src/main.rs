use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Before anything else: this may start the process again (see the module).
    tcpscope::huge_pages::restart_with_huge_pages();
    tcpscope::app::run(tcpscope::cli::Cli::parse())
}
