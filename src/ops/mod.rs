//! The operator commands (issue 7): `check --online` asks VoIP.ms, read-only, whether the
//! gateway can work; `send` sends one message; `setup-webhook` points each DID's webhook at the
//! gateway.
//!
//! Each command takes the validated [`Config`], an [`Api`] (the real [`VoipmsClient`], or a
//! scripted one in tests) and the writer its report goes to, and returns a [`Verdict`] that
//! `main.rs` turns into the exit code. Requests are built and answers read in `core::voipms`;
//! only `voipms_client.rs` speaks HTTP. What reaches the terminal is cleaned of control
//! characters (VoIP.ms's answers are not trusted to be plain text) and never holds a secret:
//! webhook keys show as `key=***`.

pub mod check;
pub mod send;
pub mod setup_webhook;

use crate::core::config::Config;
use crate::core::voipms::api::{CallOutcome, Request};
use crate::core::voipms::did_info;
use crate::logger;
use crate::voipms_client::VoipmsClient;
use std::fmt;
use std::io::Write;

/// Where a command's VoIP.ms calls go.
pub trait Api {
    /// Make one call (blocking).
    fn call(&self, request: &Request) -> CallOutcome;
}

impl Api for VoipmsClient {
    fn call(&self, request: &Request) -> CallOutcome {
        VoipmsClient::call(self, request)
    }
}

/// The client for the config's account, with its timeout.
pub fn client(config: &Config) -> VoipmsClient {
    VoipmsClient::new(
        &config.voipms.api_url,
        &config.voipms.api_username,
        config.voipms.api_password.clone(),
        config.voipms.timeout,
    )
}

/// How a command ended; [`Verdict::exit_code`] is the process's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// All is well (0).
    Ok,
    /// A problem was found, or something failed (1).
    Problem,
    /// Bad usage (2).
    Usage,
}

impl Verdict {
    /// 0, 1 or 2.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Ok => 0,
            Verdict::Problem => 1,
            Verdict::Usage => 2,
        }
    }
}

/// The URL VoIP.ms should post to, from the public URL the operator gives (`--url`):
/// `webhook.path` added when it has no path, `key=` appended unless it has the key already.
/// The error says why the URL cannot be used (it never shows the key).
pub fn webhook_target(config: &Config, url: &str) -> Result<String, String> {
    did_info::webhook_target(url, &config.webhook.path, &config.webhook.key).map_err(|e| e.to_string())
}

/// The portal page of the account's API settings.
pub const PORTAL_API: &str = "voip.ms → Main Menu → SOAP and REST/JSON API";
/// The portal page of a DID's SMS settings.
pub const PORTAL_DID: &str = "voip.ms → DID Numbers → Manage DIDs → edit the DID → Message Service (SMS/MMS)";

/// A command's findings, one line each: `ok: …`, `warning: …`, `problem: …` (each problem with
/// its fix), or a plain note. Every line is cleaned of control characters.
pub struct Report<'w> {
    out: &'w mut dyn Write,
    problems: usize,
    warnings: usize,
    /// The output could not be written: the command fails (1) rather than claim success.
    broken: bool,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report").field("problems", &self.problems).field("warnings", &self.warnings).finish()
    }
}

impl<'w> Report<'w> {
    /// A report written to `out`.
    pub fn new(out: &'w mut dyn Write) -> Report<'w> {
        Report { out, problems: 0, warnings: 0, broken: false }
    }

    fn line(&mut self, prefix: &str, text: &str) {
        let line = format!("{prefix}{}\n", logger::clean(text));
        if self.out.write_all(line.as_bytes()).and_then(|()| self.out.flush()).is_err() {
            self.broken = true;
        }
    }

    /// A plain line.
    pub fn note(&mut self, text: &str) {
        self.line("", text);
    }

    /// Something checked and found right.
    pub fn ok(&mut self, text: &str) {
        self.line("ok: ", text);
    }

    /// Something that works but deserves attention; does not fail the command.
    pub fn warning(&mut self, text: &str) {
        self.warnings += 1;
        self.line("warning: ", text);
    }

    /// Something that keeps the gateway from working, with its fix; fails the command.
    pub fn problem(&mut self, text: &str) {
        self.problems += 1;
        self.line("problem: ", text);
    }

    /// Problems so far.
    pub fn problems(&self) -> usize {
        self.problems
    }

    /// [`Verdict::Problem`] if a problem was reported or the output failed, else [`Verdict::Ok`].
    pub fn verdict(&self) -> Verdict {
        if self.problems > 0 || self.broken { Verdict::Problem } else { Verdict::Ok }
    }

    /// Write the tally line and return the verdict.
    pub fn finish(mut self) -> Verdict {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let tally = match (self.problems, self.warnings) {
            (0, 0) => "all is well".to_string(),
            (p, 0) => plural(p, "problem"),
            (0, w) => format!("no problem, {}", plural(w, "warning")),
            (p, w) => format!("{}, {}", plural(p, "problem"), plural(w, "warning")),
        };
        self.note(&format!("result: {tally}"));
        self.verdict()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A scripted [`Api`] for the commands' unit tests.

    use super::Api;
    use crate::core::voipms::api::{CallOutcome, Request};
    use std::cell::RefCell;
    use std::collections::VecDeque;

    /// Answers calls from a script, in order, and records them.
    #[derive(Debug, Default)]
    pub struct Script {
        answers: RefCell<VecDeque<(&'static str, CallOutcome)>>,
        /// The calls made, in order.
        pub calls: RefCell<Vec<Request>>,
    }

    impl Script {
        /// Each `(method, JSON body)` answers the next call, which must be of that method.
        pub fn new(answers: &[(&'static str, &str)]) -> Script {
            let answers = answers
                .iter()
                .map(|(m, body)| (*m, CallOutcome::Response { status: 200, body: body.to_string() }))
                .collect();
            Script { answers: RefCell::new(answers), calls: RefCell::default() }
        }

        /// Each `(method, outcome)` answers the next call (transport failures, HTTP errors).
        pub fn outcomes(answers: Vec<(&'static str, CallOutcome)>) -> Script {
            Script { answers: RefCell::new(answers.into()), calls: RefCell::default() }
        }

        /// The method names called, in order.
        pub fn methods(&self) -> Vec<&'static str> {
            self.calls.borrow().iter().map(Request::method).collect()
        }
    }

    impl Api for Script {
        fn call(&self, request: &Request) -> CallOutcome {
            self.calls.borrow_mut().push(request.clone());
            let (method, outcome) = self.answers.borrow_mut().pop_front().unwrap_or_else(|| {
                panic!("unscripted call {}", request.method());
            });
            assert_eq!(method, request.method(), "the script expected {method}");
            outcome
        }
    }

    /// A config with two users and three DIDs; webhook path `/voipms`, key `webhook-key`.
    pub fn config() -> crate::core::config::Config {
        crate::core::config::Config::from_json(
            r#"{"xmpp":{"component":"sms.example.com","server":"127.0.0.1:5347","secret":"s"},
                "voipms":{"api_username":"john@example.com","api_password":"secret","api_url":"http://127.0.0.1:1/api"},
                "webhook":{"listen":"127.0.0.1:8080","key":"webhook-key"},
                "jid_map":{"alice@example.com":["+15552345678"],"bob@example.com":["+15557654321","+15553334444"]},
                "state_dir":"/tmp/x"}"#,
            &crate::core::config::SecretFiles::new(),
        )
        .unwrap()
    }

    /// A getDIDsInfo answer for `did` with SMS on and the webhook at `webhook`.
    pub fn did_answer(did: &str, webhook: &str) -> String {
        format!(
            r#"{{"status":"success","dids":[{{"did":"{did}","sms_available":"1","sms_enabled":"1",
            "sms_email":"","sms_email_enabled":"0","sms_forward":"","sms_forward_enabled":"0",
            "sms_url_callback":"","sms_url_callback_enabled":"0","sms_url_callback_retry":"0",
            "webhook":"{webhook}","webhook_enabled":"1","dialmode":"1","smpp_enabled":"0","smpp_url":"",
            "smpp_user":"","smpp_pass":"","sms_sipaccount":"","sms_sipaccount_enabled":"0"}}]}}"#
        )
    }
}
