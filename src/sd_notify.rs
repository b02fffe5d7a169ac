//! systemd's service notification protocol (sd_notify(3)): `READY=1` once the gateway serves,
//! `WATCHDOG=1` from the event loop, `STOPPING=1` at shutdown, `STATUS=…` for
//! `systemctl status`. Each is one datagram to the Unix socket named by `$NOTIFY_SOCKET` (a path,
//! or `@name` in the abstract namespace). Without that variable (not under systemd, or not
//! `Type=notify`) every call does nothing.
//!
//! The watchdog is fed by the event loop itself, at half of `$WATCHDOG_USEC`: if the loop hangs,
//! systemd stops getting `WATCHDOG=1` and restarts the service.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where notifications go, if anywhere.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment systemd gives a `Type=notify` service.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok().and_then(|v| v.parse::<u64>().ok());
        let pid = std::env::var("WATCHDOG_PID").ok().and_then(|v| v.parse::<u32>().ok());
        Notifier::new(socket.as_deref().and_then(|s| s.to_str()), usec, pid, std::process::id())
    }

    /// From the values of `$NOTIFY_SOCKET`, `$WATCHDOG_USEC`, `$WATCHDOG_PID` and our pid.
    pub fn new(socket: Option<&str>, watchdog_usec: Option<u64>, watchdog_pid: Option<u32>, own_pid: u32) -> Notifier {
        let target = socket.and_then(|name| {
            let addr = address(name)?;
            let socket = UnixDatagram::unbound().ok()?;
            // Never block the event loop: a notification the reader has no room for is dropped
            // (a datagram socket's queue is 10 deep by default).
            socket.set_nonblocking(true).ok()?;
            Some((socket, addr))
        });
        // The watchdog is ours unless systemd names another process.
        let watchdog = watchdog_usec
            .filter(|&us| us > 0 && watchdog_pid.is_none_or(|p| p == own_pid))
            .map(|us| Duration::from_micros(us) / 2);
        Notifier { target, watchdog }
    }

    /// How often to send `WATCHDOG=1` (half the watchdog timeout), if a watchdog is set.
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.target.as_ref().and(self.watchdog)
    }

    fn send(&self, text: &str) {
        if let Some((socket, addr)) = &self.target {
            // Best effort: systemd not listening (or not keeping up) is not our failure.
            let _ = socket.send_to_addr(text.as_bytes(), addr);
        }
    }

    /// The gateway serves: the spool is open and the webhook port bound.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// The event loop is alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// A new status line for `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// Shutting down.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping");
    }
}

/// A `STATUS=` value is one line.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// `$NOTIFY_SOCKET` as an address: an absolute path, or `@name` in the abstract namespace.
fn address(name: &str) -> Option<SocketAddr> {
    if let Some(abstract_name) = name.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(abstract_name.as_bytes()).ok()
    } else if name.starts_with('/') {
        SocketAddr::from_pathname(name).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_the_socket_and_the_watchdog_is_half_the_timeout() {
        let path = std::env::temp_dir().join(format!("voipms-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        listener.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = Notifier::new(path.to_str(), Some(60_000_000), None, 7);
        assert_eq!(n.watchdog_every(), Some(Duration::from_secs(30)));
        n.ready("serving\non 2 lines");
        n.watchdog();
        n.stopping();
        let mut buf = [0u8; 256];
        let mut got = Vec::new();
        for _ in 0..3 {
            let k = listener.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..k]).into_owned());
        }
        assert_eq!(got, ["READY=1\nSTATUS=serving on 2 lines", "WATCHDOG=1", "STOPPING=1\nSTATUS=stopping"]);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn no_socket_or_someone_elses_watchdog_means_nothing_to_do() {
        assert_eq!(Notifier::new(None, Some(60_000_000), None, 7).watchdog_every(), None);
        let n = Notifier::new(Some("@voipms-test-abstract"), Some(60_000_000), Some(8), 7);
        assert_eq!(n.watchdog_every(), None, "WATCHDOG_PID names another process");
        assert!(n.target.is_some(), "abstract socket names are understood");
        assert!(Notifier::new(Some("relative/path"), None, None, 7).target.is_none());
        n.ready("nobody listens: no error");
    }
}
