//! Reading the configuration: the JSON file and the `*_file` secrets, handed to the core to
//! validate (`core::config`). Relative secret paths are looked up in `$CREDENTIALS_DIRECTORY`
//! when systemd provides it (`LoadCredential=`), else next to the config file.

use crate::core::config::{Config, ConfigError, SecretFiles, secret_file_paths};
use crate::core::json;
use std::path::{Path, PathBuf};

/// A config file larger than this is a mistake (the example is 600 bytes).
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Secrets are short; a large file is the wrong file.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Read and validate `path`. Every problem is returned, each naming the key or the file.
pub fn load(path: &Path) -> Result<Config, Vec<String>> {
    let text = read_limited(path, MAX_CONFIG_BYTES)
        .map_err(|e| vec![format!("cannot read config file \"{}\": {e}", path.display())])?;
    let value = json::parse(&text).map_err(|e| vec![ConfigError::NotJson(e.to_string()).to_string()])?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let mut files = SecretFiles::new();
    for (key, file) in secret_file_paths(&value) {
        let resolved = resolve(&file, credentials.as_deref(), &base);
        let result = read_limited(&resolved, MAX_SECRET_BYTES)
            .map_err(|e| format!("cannot read \"{}\": {e}", resolved.display()));
        files.insert(key, result);
    }
    Config::from_value(&value, &files).map_err(|errors| errors.iter().map(ToString::to_string).collect())
}

fn resolve(file: &str, credentials: Option<&Path>, base: &Path) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else if let Some(dir) = credentials {
        dir.join(p)
    } else {
        base.join(p)
    }
}

fn read_limited(path: &Path, limit: u64) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if meta.len() > limit {
        return Err(std::io::Error::other(format!("larger than {limit} bytes")));
    }
    let bytes = std::fs::read(path)?;
    String::from_utf8(bytes).map_err(|_| std::io::Error::other("not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_secret_paths() {
        let base = Path::new("/etc/voipms-xmpp");
        assert_eq!(resolve("/run/s", Some(Path::new("/c")), base), PathBuf::from("/run/s"));
        assert_eq!(resolve("s", Some(Path::new("/c")), base), PathBuf::from("/c/s"));
        assert_eq!(resolve("s", None, base), PathBuf::from("/etc/voipms-xmpp/s"));
    }
}
