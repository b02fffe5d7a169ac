//! MMS media: classifying `media1..3` values (URL, `data:` URI, bare base64) with the sendMMS
//! size rules, choosing MIME types and file extensions, and registering files under
//! `/media/<id>/<n>/media.<ext>` for the media endpoint (§11.12).

use crate::base64;
use crate::store::{MediaItem, State};

/// Largest decoded base64 file accepted (the documented 1.2 MB).
pub(crate) const MAX_FILE_BYTES: usize = 1_200_000;
/// Longest base64 text accepted over GET when `get_base64_limit` is on.
pub(crate) const MAX_GET_BASE64_CHARS: usize = 512;

/// A media value after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MediaSource {
    /// An `http(s)://` URL (not fetched).
    Url(String),
    /// Decoded bytes with their MIME type.
    Data { mime: String, bytes: Vec<u8> },
}

/// Classify one media value. `Err` carries the API status (`no_base64file`,
/// `exceeds_file_size`, `invalid_file`).
pub(crate) fn parse(value: &str, via_get: bool, get_limit: bool) -> Result<MediaSource, &'static str> {
    let v = value.trim();
    let lower = v.get(..8).unwrap_or(v).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(MediaSource::Url(v.to_string()));
    }
    let (mime, b64) = if lower.starts_with("data:") {
        let rest = &v[5..];
        let Some((meta, data)) = rest.split_once(',') else {
            return Err("invalid_file");
        };
        let Some(mime) = meta.strip_suffix(";base64").or_else(|| meta.strip_suffix(";BASE64")) else {
            return Err("invalid_file");
        };
        let mime = mime.split(';').next().unwrap_or("").trim();
        (Some(mime.to_ascii_lowercase()).filter(|m| is_mime(m)), data)
    } else {
        (None, v)
    };
    if via_get && get_limit && b64.len() > MAX_GET_BASE64_CHARS {
        return Err("exceeds_file_size");
    }
    // A decoded file is at most 3/4 of its base64 text: refuse hopeless sizes before decoding.
    if b64.len() / 4 * 3 > MAX_FILE_BYTES + 3 {
        return Err("exceeds_file_size");
    }
    let bytes = base64::decode(b64).ok_or("no_base64file")?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err("exceeds_file_size");
    }
    let mime = match mime {
        Some(m) if !m.is_empty() => m,
        _ => sniff(&bytes).to_string(),
    };
    Ok(MediaSource::Data { mime, bytes })
}

/// Is `m` a plain `type/subtype` (RFC 6838 restricted names), safe to send back as a header?
fn is_mime(m: &str) -> bool {
    let name = |p: &str| {
        !p.is_empty() && p.len() <= 127 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    matches!(m.split_once('/'), Some((t, st)) if name(t) && name(st))
}

/// A MIME type from the first bytes of a file.
fn sniff(b: &[u8]) -> &'static str {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if b.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        "image/gif"
    } else if b.starts_with(b"%PDF-") {
        "application/pdf"
    } else if b.get(4..8) == Some(b"ftyp") {
        "video/mp4"
    } else {
        "application/octet-stream"
    }
}

/// A file extension for a MIME type.
pub(crate) fn ext_for_mime(mime: &str) -> String {
    let known = match mime {
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/svg+xml" => "svg",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "video/mpeg" => "mpeg",
        "video/quicktime" => "mov",
        "video/3gpp" | "audio/3gpp" => "3gp",
        "text/plain" => "txt",
        "text/vcard" | "text/x-vcard" => "vcf",
        "application/octet-stream" => "bin",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    match mime.split_once('/') {
        Some((_, sub)) if (1..=8).contains(&sub.len()) && sub.bytes().all(|c| c.is_ascii_alphanumeric()) => {
            sub.to_string()
        }
        _ => "bin".to_string(),
    }
}

/// A file extension from a URL's last path segment (default `bin`).
pub(crate) fn ext_for_url(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let after_scheme = path.split_once("://").map_or(path, |(_, r)| r);
    let Some((_, p)) = after_scheme.split_once('/') else {
        return "bin".into();
    };
    let last = p.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty() && (1..=5).contains(&ext.len()) && ext.bytes().all(|c| c.is_ascii_alphanumeric()) =>
        {
            ext.to_ascii_lowercase()
        }
        _ => "bin".into(),
    }
}

/// Register `sources` as the media of message `id`; returns their public URLs in order.
pub(crate) fn register(state: &mut State, id: u64, sources: Vec<MediaSource>) -> Vec<String> {
    let mut urls = Vec::with_capacity(sources.len());
    for (i, src) in sources.into_iter().enumerate() {
        let n = i + 1;
        let (ext, item) = match src {
            MediaSource::Url(u) => (ext_for_url(&u), MediaItem::Redirect(u)),
            MediaSource::Data { mime, bytes } => (ext_for_mime(&mime), MediaItem::Data { mime, bytes }),
        };
        let path = format!("/media/{id}/{n}/media.{ext}");
        urls.push(format!("{}{}", state.base_url, path));
        state.media.insert(path, item);
    }
    urls
}

/// Forget the media of message `id`.
pub(crate) fn unregister(state: &mut State, id: u64) {
    let prefix = format!("/media/{id}/");
    state.media.retain(|path, _| !path.starts_with(&prefix));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify() {
        assert_eq!(
            parse("https://example.com/a.JPG?x=1", false, true),
            Ok(MediaSource::Url("https://example.com/a.JPG?x=1".into()))
        );
        assert_eq!(
            parse("data:image/png;base64,iVBORw0KGgo=", false, true),
            Ok(MediaSource::Data { mime: "image/png".into(), bytes: b"\x89PNG\r\n\x1a\n".to_vec() })
        );
        match parse("/9j/4AAQ", false, true) {
            Ok(MediaSource::Data { mime, .. }) => assert_eq!(mime, "image/jpeg"),
            other => panic!("{other:?}"),
        }
        assert_eq!(parse("data:image/png,abc", false, true), Err("invalid_file"));
        assert_eq!(parse("%%%", false, true), Err("no_base64file"));
        let long = "A".repeat(516);
        assert_eq!(parse(&long, true, true), Err("exceeds_file_size"));
        assert!(parse(&long, true, false).is_ok());
        assert!(parse(&long, false, true).is_ok());
        let big = "A".repeat(1_600_004);
        assert_eq!(parse(&big, false, true), Err("exceeds_file_size"));
        let max = "A".repeat(1_600_000);
        assert!(parse(&max, false, true).is_ok());
    }

    #[test]
    fn extensions() {
        assert_eq!(ext_for_url("https://voip.ms/themes/voipms/assets/img/talent.jpg?v=2"), "jpg");
        assert_eq!(ext_for_url("https://example.com/"), "bin");
        assert_eq!(ext_for_url("https://example.com"), "bin");
        assert_eq!(ext_for_url("https://example.com/file.tar.gz"), "gz");
        assert_eq!(ext_for_mime("image/jpeg"), "jpg");
        assert_eq!(ext_for_mime("image/webp"), "webp");
        assert_eq!(ext_for_mime("weird"), "bin");
    }
}
