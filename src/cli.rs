//! The command line (clap). `tcpscope read FILE... [FILTER]` and `tcpscope live IFACE [FILTER]`,
//! where FILTER is a BPF expression written as for tcpdump, in as many words as you like.

use clap::{Args, Parser, Subcommand};

use crate::render::Format;
use crate::tcp::report::FailOn;
use crate::time::TimeFormat;

#[derive(Parser, Debug)]
#[command(
    name = "tcpscope",
    version,
    about = "Explains every TCP connection in a capture: handshake, data, close, resets, retransmissions, TIME_WAIT",
    after_help = "Examples:
  tcpscope read dump.pcap                    timeline of events, then the connection table
  tcpscope read dump.pcap port 8899          only what matches a BPF filter, as tcpdump -r takes it
  tcpscope read rot0.pcap rot1.pcap rot2.pcap   a rotated set (tcpdump -C/-G), read as one capture
  tcpdump -i lo -w - | tcpscope read -       from a pipe
  tcpscope live eth0 port 8899               live: events as they happen, the table on Ctrl-C
  tcpscope --format json read dump.pcap      JSON Lines for scripts
  tcpscope read dump.pcap --fail-on refused,reset   exit 1 if a connection was refused or reset

Exit status: 0 fine, 1 a --fail-on kind matched, 2 the input could not be read or the command line was wrong."
)]
pub struct Cli {
    #[command(flatten)]
    pub opts: Options,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Options {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub format: Format,

    /// Also show every TCP segment, as tcpdump prints it, with each side's state after it
    #[arg(long, global = true)]
    pub packets: bool,

    /// How timestamps are printed in the text views (JSON always uses RFC 3339 UTC)
    #[arg(long, value_enum, default_value_t = TimeFormat::Utc, global = true)]
    pub time: TimeFormat,

    /// Length of TIME_WAIT in seconds: 60 as Linux, 240 for RFC 9293's 2×MSL
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, global = true)]
    pub time_wait: f64,

    /// Exit 1 if a connection shows any of these (comma-separated); the matches are listed, in
    /// connection order
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "KIND,...",
        global = true
    )]
    pub fail_on: Vec<FailOn>,

    /// Forget a connection silent this long (seconds; Zeek uses 300; 0 = never)
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0, global = true)]
    pub idle_timeout: f64,

    /// The same for a connection still in its handshake (seconds; Linux gives up a SYN after
    /// about 130 s; 0 = never)
    #[arg(long, value_name = "SECONDS", default_value_t = 150.0, global = true)]
    pub handshake_timeout: f64,

    /// Hold at most this many connections; beyond it the one due first is forgotten (a flood
    /// of spoofed SYNs must not eat the machine)
    #[arg(long, value_name = "N", default_value_t = 1_000_000, global = true)]
    pub max_connections: usize,

    /// Colour in the text output: auto (a terminal, unless NO_COLOR is set), always, never
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read capture files (pcap or pcapng, optionally gzip-compressed; `-` is stdin)
    #[command(
        after_help = "Every leading argument that names an existing file (or `-`) is a capture; the words after the\nlast one form the BPF filter, e.g.  tcpscope read a.pcap b.pcap tcp port 8899"
    )]
    Read {
        /// Capture files followed by an optional BPF filter expression
        #[arg(required = true, value_name = "FILE... [FILTER]")]
        words: Vec<String>,
    },
    /// Capture live on an interface (needs root or CAP_NET_RAW); Ctrl-C stops and prints the table
    Live {
        /// Interface name (e.g. eth0, lo, any)
        interface: String,
        /// BPF filter expression, as for tcpdump
        #[arg(value_name = "FILTER")]
        filter: Vec<String>,
        /// Stop after this many packets
        #[arg(long, short = 'c', value_name = "N")]
        count: Option<u64>,
        /// Stop after this many seconds
        #[arg(long, value_name = "SECONDS")]
        duration: Option<f64>,
        /// Also write the captured packets to this pcap file
        #[arg(short = 'w', value_name = "FILE")]
        write: Option<String>,
    },
}

/// Splits `read`'s words into capture files and filter words.
pub fn split_inputs(words: &[String]) -> (Vec<String>, Vec<String>) {
    let n = words
        .iter()
        .take_while(|w| *w == "-" || std::path::Path::new(w).is_file() || looks_like_capture(w))
        .count()
        // The first word is always a capture: a missing file is reported as such, not parsed
        // as a filter.
        .max(1);
    let n = n.min(words.len());
    (words[..n].to_vec(), words[n..].to_vec())
}

/// A word no filter would contain: a name ending like a capture file. Such a word is reported
/// as a missing file rather than as a filter syntax error.
fn looks_like_capture(w: &str) -> bool {
    [".pcap", ".pcapng", ".cap", ".gz"]
        .iter()
        .any(|ext| w.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_may_follow_the_filter() {
        let cli = Cli::try_parse_from([
            "tcpscope",
            "read",
            "Cargo.toml",
            "port",
            "8899",
            "--format",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.opts.format, Format::Json);
        let Command::Read { words } = cli.command else {
            panic!("not read")
        };
        let (files, filter) = split_inputs(&words);
        assert_eq!(files, ["Cargo.toml"]);
        assert_eq!(filter, ["port", "8899"]);
    }

    #[test]
    fn fail_on_takes_a_comma_list() {
        let cli =
            Cli::try_parse_from(["tcpscope", "--fail-on", "refused,reset", "read", "x"]).unwrap();
        assert_eq!(cli.opts.fail_on, [FailOn::Refused, FailOn::Reset]);
    }

    #[test]
    fn a_missing_first_file_stays_a_file() {
        let words = vec!["missing.pcap".to_string(), "port".into(), "80".into()];
        let (files, filter) = split_inputs(&words);
        assert_eq!(files, ["missing.pcap"]);
        assert_eq!(filter, ["port", "80"]);
    }
}
