//! The `voipms-xmpp` command: `run`, `check [--online]`, `send`, `setup-webhook`, `--version`.
//! Exit codes: 0 ok, 1 a problem found or a runtime failure, 2 bad config or usage. The
//! operator commands live in `ops`; this file is the command line and the dispatch.
#![forbid(unsafe_code)]

use argh::FromArgs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use voipms_xmpp::core::config::Config;
use voipms_xmpp::ops::{self, setup_webhook};
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
    Send(SendCmd),
    SetupWebhook(SetupWebhookCmd),
}

/// Run the gateway in the foreground, logging to stderr.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "run")]
struct RunCmd {
    /// path to the JSON configuration file
    #[argh(option)]
    config: PathBuf,
}

/// Validate the configuration and print every problem; with --online, also ask VoIP.ms
/// (read-only) whether the account and each DID are set up for the gateway. Exit 0 if all is
/// well, 1 if a problem was found, 2 if the configuration is invalid.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
struct CheckCmd {
    /// path to the JSON configuration file
    #[argh(option)]
    config: PathBuf,
    /// ask VoIP.ms: credentials, API access from this IP, each DID's SMS and webhook, balance
    #[argh(switch)]
    online: bool,
    /// with --online: the gateway's public webhook URL, which each DID's webhook must match
    #[argh(option)]
    url: Option<String>,
}

/// Send one SMS/MMS from one of the configured DIDs; print the VoIP.ms id(s). Exit 0 if sent,
/// 1 if not, 2 for bad arguments.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "send")]
struct SendCmd {
    /// path to the JSON configuration file
    #[argh(option)]
    config: PathBuf,
    /// the DID to send from (one of jid_map's)
    #[argh(option)]
    from: String,
    /// the US/Canada number to send to
    #[argh(option)]
    to: String,
    /// an http(s) URL of a picture or file to attach (up to 3 times)
    #[argh(option)]
    media: Vec<String>,
    /// the text (may be "" when --media is given)
    #[argh(positional)]
    text: String,
}

/// Point every mapped DID's SMS/MMS webhook at URL (the key is added), keeping every other
/// setting. Exit 0 if all done, 1 if any DID failed, 2 for bad arguments.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "setup-webhook")]
struct SetupWebhookCmd {
    /// path to the JSON configuration file
    #[argh(option)]
    config: PathBuf,
    /// the gateway's public webhook URL, e.g. https://sms.example.com/voipms
    #[argh(option)]
    url: String,
    /// print each change, change nothing
    #[argh(switch)]
    dry_run: bool,
    /// seconds to wait after sms_wait_message (default 60; for tests)
    #[argh(option, hidden_help)]
    wait_secs: Option<u64>,
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
        None => usage("a command is required: run, check, send or setup-webhook (see --help)"),
        Some(Command::Check(c)) => check(c),
        Some(Command::Run(r)) => {
            let config = match load(&r.config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match daemon::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("voipms-xmpp: {}", logger::clean(&e.to_string()));
                    ExitCode::from(1)
                }
            }
        }
        Some(Command::Send(s)) => {
            let config = match load(&s.config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let outgoing = match ops::send::prepare(&config, &s.from, &s.to, &s.text, &s.media) {
                Ok(o) => o,
                Err(e) => return usage(&e),
            };
            let verdict = ops::send::run(
                &outgoing,
                &ops::client(&config),
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            );
            ExitCode::from(verdict.exit_code())
        }
        Some(Command::SetupWebhook(s)) => {
            if s.wait_secs.is_some_and(|w| w > 600) {
                return usage("--wait-secs: at most 600");
            }
            let config = match load(&s.config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let target = match ops::webhook_target(&config, &s.url) {
                Ok(t) => t,
                Err(e) => return usage(&format!("--url: {e}")),
            };
            let opts = setup_webhook::Options {
                target: &target,
                dry_run: s.dry_run,
                wait: s.wait_secs.map_or(setup_webhook::SMS_WAIT_TIME, Duration::from_secs),
            };
            let verdict = setup_webhook::run(
                &config,
                &opts,
                &ops::client(&config),
                &mut std::io::stdout().lock(),
                &mut std::thread::sleep,
            );
            ExitCode::from(verdict.exit_code())
        }
    }
}

fn check(c: CheckCmd) -> ExitCode {
    if c.url.is_some() && !c.online {
        return usage("--url needs --online");
    }
    let config = match load(&c.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let dids: usize = config.users.iter().map(|u| u.dids.len()).sum();
    println!("{}: valid ({} users, {dids} DIDs)", c.config.display(), config.users.len());
    if !c.online {
        return ExitCode::SUCCESS;
    }
    let target = match c.url.as_deref().map(|u| ops::webhook_target(&config, u)).transpose() {
        Ok(t) => t,
        Err(e) => return usage(&format!("--url: {e}")),
    };
    let verdict = ops::check::online(&config, target.as_deref(), &ops::client(&config), &mut std::io::stdout().lock());
    ExitCode::from(verdict.exit_code())
}

/// Read and validate the config; on failure print every problem and give exit code 2.
fn load(path: &Path) -> Result<Config, ExitCode> {
    config_file::load(path).map_err(|errors| {
        for e in &errors {
            eprintln!("{}", logger::clean(&format!("{}: {e}", path.display())));
        }
        ExitCode::from(2)
    })
}

fn usage(message: &str) -> ExitCode {
    eprintln!("voipms-xmpp: {}", logger::clean(message));
    ExitCode::from(2)
}
