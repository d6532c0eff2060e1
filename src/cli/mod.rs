//! The `tokenvault` command line.

mod check;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// tokenvault: a tokenization vault for card numbers and identity data.
///
/// This build holds the vault core (validation, envelope encryption, payment
/// tokens with domain controls, durable storage). The mutual-TLS service
/// (`serve`, `init`) is not built yet.
#[derive(Parser, Debug)]
#[command(name = "tokenvault", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a BIN table file (prefix,issuer,card_type per line) before
    /// deploying it; prints the number of entries or the first bad line.
    CheckBinTable {
        /// Path to the CSV file.
        file: std::path::PathBuf,
    },
    /// Validate a payment-token BIN range such as 810000-819999: same-length
    /// 6 to 8 digit ends, and no overlap with any card network's prefixes.
    CheckTokenRange { range: String },
}

/// Printing is this function's job: it is the command line's only output.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::CheckBinTable { file } => check::bin_table(&file),
        Command::CheckTokenRange { range } => check::token_range(&range),
    };
    match outcome {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("tokenvault: {message}");
            ExitCode::from(2)
        }
    }
}
