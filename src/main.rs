//! The `voipms-xmpp` command: `run`, `check`, `--version`. Exit codes: 0 ok, 2 bad config or
//! usage, 1 runtime failure.
#![forbid(unsafe_code)]

use argh::FromArgs;
use std::path::PathBuf;
use std::process::ExitCode;
use voipms_xmpp::{config_file, daemon, logger};

/// XMPP ⇄ SMS/MMS gateway for VoIP.ms (an XEP-0114 component).
#[derive(FromArgs, Debug)]
struct Cli {
    /// print the version and exit
    #[argh(switch)]
    version: bool,
    #[argh(subcommand)]
    command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    Run(RunCmd),
    Check(CheckCmd),
}

/// Run the gateway in the foreground, logging to stderr.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "run")]
struct RunCmd {
    /// path to the JSON configuration file
    #[argh(option)]
    config: PathBuf,
}

/// Validate the configuration and print every problem; exit 0 if valid, 2 if not.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
struct CheckCmd {
    /// path to the JSON configuration file
    #[argh(option)]
    config: PathBuf,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let name = args.first().map_or("voipms-xmpp", |s| s.as_str());
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let cli = match Cli::from_args(&[name], &rest) {
        Ok(cli) => cli,
        Err(early) => {
            return match early.status {
                Ok(()) => {
                    print!("{}", early.output);
                    ExitCode::SUCCESS
                }
                Err(()) => {
                    eprint!("{}", early.output);
                    ExitCode::from(2)
                }
            };
        }
    };
    if cli.version {
        println!("voipms-xmpp {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    match cli.command {
        None => {
            eprintln!("voipms-xmpp: a command is required: run or check (see --help)");
            ExitCode::from(2)
        }
        Some(Command::Check(c)) => match config_file::load(&c.config) {
            Ok(config) => {
                let dids: usize = config.users.iter().map(|u| u.dids.len()).sum();
                println!("{}: valid ({} users, {dids} DIDs)", c.config.display(), config.users.len());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors {
                    eprintln!("{}", logger::clean(&format!("{}: {e}", c.config.display())));
                }
                ExitCode::from(2)
            }
        },
        Some(Command::Run(r)) => {
            let config = match config_file::load(&r.config) {
                Ok(c) => c,
                Err(errors) => {
                    for e in &errors {
                        eprintln!("{}", logger::clean(&format!("{}: {e}", r.config.display())));
                    }
                    return ExitCode::from(2);
                }
            };
            match daemon::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("voipms-xmpp: {}", logger::clean(&e.to_string()));
                    ExitCode::from(1)
                }
            }
        }
    }
}
