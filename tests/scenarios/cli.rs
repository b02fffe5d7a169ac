//! The command line contract: `check` prints every problem and exits 2; `--version`; usage errors.

use crate::support::harness::{TempDir, gateway_command};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = gateway_command().args(args).env_remove("CREDENTIALS_DIRECTORY").output().expect("run the binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_reports_every_problem_and_exits_2() {
    let dir = TempDir::new("cli");
    let path = dir.0.join("bad.json");
    std::fs::write(
        &path,
        r#"{"xmpp":{"component":"sms.example.com","server":"127.0.0.1","secret":"s","secret_file":"f"},
            "voipms":{"api_usr":"u","api_password":"p"},
            "webhook":{"listen":"0.0.0.0:8080","key":"k"},
            "jid_map":{"alice@example.com":["+15552345678"],"bob@example.com":["5552345678"]},
            "state_dir":"/tmp/x"}"#,
    )
    .unwrap();
    let (code, _, err) = run(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    for expected in [
        "\"xmpp.server\": expected \"host:port\"",
        "\"xmpp\": give exactly one of \"secret\" and \"secret_file\"",
        "unknown key \"voipms.api_usr\"",
        "\"voipms.api_username\" is required",
        "DID \"+15552345678\" is mapped to both \"alice@example.com\" and \"bob@example.com\"",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(!err.contains("\"p\""), "no secret in errors");
}

#[test]
fn check_accepts_a_good_config_with_secret_files() {
    let dir = TempDir::new("cli-ok");
    std::fs::write(dir.0.join("xmpp-secret"), "s3cret\n").unwrap();
    let path = dir.0.join("good.json");
    std::fs::write(
        &path,
        r#"{"xmpp":{"component":"sms.example.com","server":"localhost:5347","secret_file":"xmpp-secret"},
            "voipms":{"api_username":"u","api_password":"p"},
            "webhook":{"listen":"0.0.0.0:8080","key":"k"},
            "jid_map":{"alice@example.com":["+15552345678"]},
            "state_dir":"/tmp/x"}"#,
    )
    .unwrap();
    let (code, out, err) = run(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid"), "{out}");
    let missing = dir.0.join("missing.json");
    let (code, _, err) = run(&["check", "--config", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read config file"), "{err}");
}

#[test]
fn version_help_and_usage_errors() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!((code, out.trim()), (0, concat!("voipms-xmpp ", env!("CARGO_PKG_VERSION"))));
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("run") && out.contains("check"));
    assert_eq!(run(&["run", "--config=x.json"]).0, 2, "argh's --opt=value is a usage error");
    assert_eq!(run(&["frobnicate"]).0, 2);
    assert_eq!(run(&[]).0, 2);
}

/// Every config the documentation shows is one the binary accepts: the example file, and each
/// ```json block of docs/configuration.md and README.md that is a whole config (has "jid_map").
#[test]
fn the_documented_configs_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, _, err) = run(&["check", "--config", root.join("docs/example-config.json").to_str().unwrap()]);
    assert_eq!(code, 0, "docs/example-config.json: {err}");
    let dir = TempDir::new("cli-docs");
    let mut checked = 0;
    for doc in ["docs/configuration.md", "README.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for (i, block) in text.split("```json\n").skip(1).enumerate() {
            let json = block.split("```").next().unwrap();
            if !json.contains("\"jid_map\"") {
                continue;
            }
            let path = dir.0.join(format!("block-{checked}.json"));
            std::fs::write(&path, json).unwrap();
            let (code, _, err) = run(&["check", "--config", path.to_str().unwrap()]);
            assert_eq!(code, 0, "{doc}, json block {}: {err}", i + 1);
            checked += 1;
        }
    }
    assert!(checked >= 1, "no config found in the docs");
}
