//! The sans-IO invariant: nothing under `src/core/` does I/O, reads the clock, or calls into the
//! shell. Fails naming the file and line of each violation.

use std::path::Path;

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
            let text = std::fs::read_to_string(&path).expect("read file");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for bad in FORBIDDEN {
                    if code.contains(bad) {
                        found.push(format!("{}:{}: {bad}", path.display(), n + 1));
                    }
                }
                // `crate::` paths must stay inside `crate::core`.
                let mut rest = code;
                while let Some(i) = rest.find("crate::") {
                    rest = &rest[i + 7..];
                    if !rest.starts_with("core") {
                        found.push(format!(
                            "{}:{}: a crate:: path leaves the core",
                            path.display(),
                            n + 1
                        ));
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
    assert!(
        files >= 20,
        "only {files} files found under {}",
        core.display()
    );
    assert!(
        found.is_empty(),
        "sans-IO violations:\n{}",
        found.join("\n")
    );
}
