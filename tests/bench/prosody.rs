//! A private Prosody for the `--prosody` mode: its config (the template `prosody.cfg.lua` next to
//! this file), its loopback ports, its test user and its process.
//!
//! Started as the interop tier starts it (tests/interop/stack.py): a directory of its own, the
//! config rendered into it, `prosodyctl register` for the c2s user, then `prosody -F` in the
//! foreground as our child, ready once its ports accept connections.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server's host, the component's domain and its secret, the c2s user.
pub const DOMAIN: &str = "localhost";
pub const COMPONENT: &str = "sms.localhost";
pub const SECRET: &str = "bench-component-secret";
pub const USER: &str = "alice";
pub const PASSWORD: &str = "alicepw";
/// The old module's webhook key (`voipms_query_key`), when it is loaded.
pub const MODULE_KEY: &str = "bench-module-key";

const TEMPLATE: &str = include_str!("prosody.cfg.lua");

/// A running Prosody; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Prosody {
    pub c2s: SocketAddr,
    pub component: SocketAddr,
    /// Prosody's HTTP port (mod_http), serving mod_voipms's `/voipms` when it is loaded.
    pub http: SocketAddr,
    child: Child,
    dir: PathBuf,
}

/// Both programs of Debian's `prosody` package, or why the mode cannot run.
pub fn available() -> Result<(), String> {
    for program in ["prosody", "prosodyctl"] {
        let found = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
            .unwrap_or(false);
        if !found {
            return Err(format!(
                "`{program}` is not on PATH: the --prosody mode needs Prosody 0.12; install it with \
                 `apt-get install prosody` (as .ci/interop does)"
            ));
        }
    }
    Ok(())
}

/// A loopback port nothing listens on right now.
fn free_port() -> Result<SocketAddr, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    l.local_addr().map_err(|e| e.to_string())
}

fn listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

impl Prosody {
    /// Render the config into `dir`, register the c2s user, start Prosody and wait for its
    /// ports. `mod_voipms`: the directory holding `mod_voipms.lua`, loaded on the host.
    /// `nodelay`: turn Nagle's algorithm off on Prosody's sockets (`network_settings`).
    pub fn start(dir: &Path, mod_voipms: Option<&Path>, nodelay: bool) -> Result<Prosody, String> {
        available()?;
        for sub in ["data", "certs"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let (c2s, component, http) = (free_port()?, free_port()?, free_port()?);
        let (modules, extra) = match mod_voipms {
            None => (String::new(), String::new()),
            Some(module_dir) => {
                let file = module_dir.join("mod_voipms.lua");
                if !file.is_file() {
                    return Err(format!("--mod-voipms: no {}", file.display()));
                }
                let module_dir = module_dir.canonicalize().map_err(|e| format!("{}: {e}", module_dir.display()))?;
                (
                    "\"voipms\";".to_string(),
                    format!(
                        "plugin_paths = {{ \"{}\" }}\n\
                         voipms_api_username = \"bench@example.com\"\n\
                         voipms_api_password = \"bench-api-password\"\n\
                         voipms_query_key = \"{MODULE_KEY}\"\n\
                         voipms_jid_map = {{ [\"{USER}@{DOMAIN}\"] = {{ \"+15552345678\" }} }}\n",
                        module_dir.display()
                    ),
                )
            }
        };
        let config = TEMPLATE
            .replace("@DIR@", &dir.display().to_string())
            .replace("@C2S_PORT@", &c2s.port().to_string())
            .replace("@COMPONENT_PORT@", &component.port().to_string())
            .replace("@HTTP_PORT@", &http.port().to_string())
            .replace("@SECRET@", SECRET)
            .replace("@MODULES@", &modules)
            .replace("@EXTRA@", &extra)
            .replace("@NETWORK@", if nodelay { "nagle = false" } else { "" });
        let config_path = dir.join("prosody.cfg.lua");
        std::fs::write(&config_path, config).map_err(|e| format!("{}: {e}", config_path.display()))?;

        let out = Command::new("prosodyctl")
            .arg("--config")
            .arg(&config_path)
            .args(["register", USER, DOMAIN, PASSWORD])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("prosodyctl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "prosodyctl register {USER}: {}{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }

        let log = std::fs::File::create(dir.join("prosody.out")).map_err(|e| e.to_string())?;
        let child = Command::new("prosody")
            .arg("--config")
            .arg(&config_path)
            .arg("-F")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("prosody: {e}"))?;
        let mut prosody = Prosody { c2s, component, http, child, dir: dir.to_path_buf() };
        let mut ports = vec![c2s, component];
        if mod_voipms.is_some() {
            ports.push(http);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ports.iter().all(|&p| listening(p)) {
            if let Ok(Some(status)) = prosody.child.try_wait() {
                return Err(format!("prosody exited ({status}); {}", prosody.log_tail()));
            }
            if Instant::now() > deadline {
                return Err(format!("prosody did not listen on {ports:?} within 30 s; {}", prosody.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(prosody)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of Prosody's log and console output, for error messages.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["prosody.log", "prosody.out"] {
            let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("{name}:\n{}\n", lines[lines.len().saturating_sub(15)..].join("\n")));
        }
        out
    }

    /// Lines of Prosody's log at level warn or error (a sign the run was not clean).
    pub fn warnings(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join("prosody.log")).unwrap_or_default();
        text.lines().filter(|l| l.contains("\twarn\t") || l.contains("\terror\t")).map(str::to_string).collect()
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Stop a process the bench started: SIGTERM, up to 10 s to exit, then SIGKILL.
pub fn stop(child: &mut Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
