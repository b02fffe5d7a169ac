//! The `mock-voipms` binary: reads an optional JSON configuration, starts the mock, prints
//! exactly one line `mock-voipms listening on http://IP:PORT` to stdout when ready, logs to
//! stderr, and exits 0 on SIGTERM or SIGINT.

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use argh::FromArgs;
use async_signal::{Signal, Signals};
use mock_voipms::{MockConfig, MockVoipms};
use smol::stream::StreamExt;

/// A mock of the VoIP.ms REST API with fault injection, inbound push simulation and a JSON
/// control API under /_mock/ (unauthenticated: bind to loopback).
#[derive(FromArgs, Debug)]
struct Args {
    /// address to listen on, e.g. 127.0.0.1:0 (port 0 picks a free port; default 127.0.0.1:0)
    #[argh(option, default = "SocketAddr::from(([127, 0, 0, 1], 0))")]
    listen: SocketAddr,

    /// JSON configuration file (default: account john@example.com / secret, one DID
    /// 5551234567, all switches at their defaults)
    #[argh(option)]
    config: Option<PathBuf>,
}

fn run(args: Args) -> Result<(), String> {
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            MockConfig::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => MockConfig::for_tests(&["5551234567"]),
    };
    // Register the handlers before announcing readiness, so an early SIGTERM is not fatal.
    let mut signals =
        Signals::new([Signal::Term, Signal::Int]).map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let mock = MockVoipms::start_with_logging(config, args.listen, true)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "mock-voipms listening on {}", mock.base_url())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(out);
    let signal = smol::block_on(signals.next());
    eprintln!(
        "mock-voipms: {} received, shutting down",
        match signal {
            Some(Ok(Signal::Int)) => "SIGINT",
            Some(Ok(_)) => "SIGTERM",
            _ => "signal stream ended",
        }
    );
    drop(mock);
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mock-voipms: {e}");
            ExitCode::FAILURE
        }
    }
}
