//! The sans-IO invariant: nothing under `src/core/` does I/O, reads the clock, or calls into the
//! shell. Fails naming the file and line of each violation.
//!
//! Test code is exempt (a `#[cfg(test)] mod tests {` to the end of its file, and `*_tests.rs` files):
//! simulated time needs one real `Instant` to count from. The address types of `std::net` are
//! plain values (the config parses `ip:port` into them) and are allowed.

use std::path::Path;

/// Pure value types that merely live in forbidden modules.
const ALLOWED: &[&str] = &["std::net::SocketAddr", "std::net::IpAddr", "std::net::Ipv4Addr", "std::net::Ipv6Addr"];

const FORBIDDEN: &[&str] = &[
    "std::net",
    "std::fs",
    "std::thread",
    "std::env",
    "std::process",
    "std::io::stdin",
    "std::io::stdout",
    "std::io::stderr",
    "smol",
    "async_h1",
    "http_types",
    "ureq",
    "async_io",
    "futures_lite",
    "blocking",
    "async_signal",
    "Instant::now",
    "SystemTime::now",
    "UNIX_EPOCH",
    "println!",
    "eprintln!",
    "print!(",
    "eprint!(",
    "dbg!",
];

fn visit(dir: &Path, found: &mut Vec<String>, files: &mut usize) {
    for entry in std::fs::read_dir(dir).expect("read src/core") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            visit(&path, found, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            *files += 1;
            if path.file_name().is_some_and(|n| n.to_string_lossy().ends_with("_tests.rs")) {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read file");
            let lines: Vec<&str> = text.lines().collect();
            for (n, line) in lines.iter().enumerate() {
                if line.trim() == "#[cfg(test)]" && lines.get(n + 1).is_some_and(|next| next.trim() == "mod tests {") {
                    break;
                }
                let mut code = line.split("//").next().unwrap_or("").to_string();
                for ok in ALLOWED {
                    code = code.replace(ok, "");
                }
                for bad in FORBIDDEN {
                    if code.contains(bad) {
                        found.push(format!("{}:{}: {bad}", path.display(), n + 1));
                    }
                }
                // `crate::` paths must stay inside `crate::core`.
                let mut rest = code.as_str();
                while let Some(i) = rest.find("crate::") {
                    rest = &rest[i + 7..];
                    if !rest.starts_with("core") {
                        found.push(format!("{}:{}: a crate:: path leaves the core", path.display(), n + 1));
                    }
                }
            }
        }
    }
}

#[test]
fn the_core_does_no_io_and_reads_no_clock() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut found = Vec::new();
    let mut files = 0;
    visit(&core, &mut found, &mut files);
    assert!(files >= 20, "only {files} files found under {}", core.display());
    assert!(found.is_empty(), "sans-IO violations:\n{}", found.join("\n"));
}
