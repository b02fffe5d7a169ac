//! Turning one XMPP message into VoIP.ms sends: sendSMS or sendMMS, and long text cut into parts.
//!
//! VoIP.ms limits count UTF-8 **bytes**: sendSMS refuses 161 bytes (`sms_toolong`, voipms.md
//! §5.1), sendMMS takes 2048 bytes of text and at most three media (§5.2). So: no media and at
//! most 160 bytes → one sendSMS; otherwise sendMMS, with text over 2048 bytes cut into parts that
//! are sent one after the other. Cuts fall on character boundaries (never inside a UTF-8
//! sequence, the seed module's bug), never before a combining mark or inside an emoji sequence,
//! and preferably after a space; the parts joined give back the text exactly.

use std::fmt;

/// sendSMS's limit in UTF-8 bytes.
pub const SMS_MAX_BYTES: usize = 160;
/// sendMMS's text limit in UTF-8 bytes.
pub const MMS_MAX_BYTES: usize = 2048;
/// sendMMS's media slots (`media1..media3`).
pub const MAX_MEDIA: usize = 3;
/// At most this many parts for one message (16 KiB of text): VoIP.ms allows 100 API sends a day
/// by default, and a pasted document should be refused rather than eat the day's quota.
pub const MAX_PARTS: usize = 8;
/// A media URL longer than this is refused.
pub const MAX_URL_BYTES: usize = 2048;

/// Which VoIP.ms method sends a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `sendSMS`.
    Sms,
    /// `sendMMS`.
    Mms,
}

/// One VoIP.ms send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// sendSMS or sendMMS.
    pub method: Method,
    /// The text of this part (may be empty for a media-only MMS).
    pub message: String,
    /// Media URLs (only on the first part).
    pub media: Vec<String>,
}

/// Why a message cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// Nothing to send.
    Empty,
    /// More text than [`MAX_PARTS`] parts.
    TooLong {
        /// The text's length in bytes.
        bytes: usize,
    },
    /// More than [`MAX_MEDIA`] attachments.
    TooManyMedia(usize),
    /// An attachment VoIP.ms cannot fetch (not http/https, e.g. an OMEMO `aesgcm://` URL).
    UnsupportedMedia,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Empty => write!(f, "the message is empty"),
            PlanError::TooLong { bytes } => write!(
                f,
                "the message is too long for SMS/MMS ({bytes} bytes; at most {} bytes)",
                MAX_PARTS * MMS_MAX_BYTES
            ),
            PlanError::TooManyMedia(n) => write!(f, "an MMS can carry at most {MAX_MEDIA} attachments, not {n}"),
            PlanError::UnsupportedMedia => {
                write!(f, "attachments must be plain http(s) links; encrypted (OMEMO) files cannot be sent as MMS")
            }
        }
    }
}

impl std::error::Error for PlanError {}

/// Plan the sends for `text` with `media` URLs. The caller has already removed a body that only
/// repeats a media URL.
pub fn plan(text: &str, media: &[String]) -> Result<Vec<Part>, PlanError> {
    if media.len() > MAX_MEDIA {
        return Err(PlanError::TooManyMedia(media.len()));
    }
    if media.iter().any(|m| !is_http_url(m)) {
        return Err(PlanError::UnsupportedMedia);
    }
    if text.trim().is_empty() && media.is_empty() {
        return Err(PlanError::Empty);
    }
    if media.is_empty() && text.len() <= SMS_MAX_BYTES {
        return Ok(vec![Part { method: Method::Sms, message: text.to_string(), media: Vec::new() }]);
    }
    if text.len() > MAX_PARTS * MMS_MAX_BYTES {
        return Err(PlanError::TooLong { bytes: text.len() });
    }
    let chunks = split(text, MMS_MAX_BYTES);
    if chunks.len() > MAX_PARTS {
        return Err(PlanError::TooLong { bytes: text.len() });
    }
    let mut parts: Vec<Part> =
        chunks.into_iter().map(|c| Part { method: Method::Mms, message: c.to_string(), media: Vec::new() }).collect();
    match parts.first_mut() {
        Some(first) => first.media = media.to_vec(),
        None => parts.push(Part { method: Method::Mms, message: String::new(), media: media.to_vec() }),
    }
    Ok(parts)
}

/// `http://` or `https://` followed by a host, with no whitespace.
pub fn is_http_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && s.len() <= MAX_URL_BYTES
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Cut `text` into pieces of at most `max` bytes whose concatenation is `text`.
pub fn split(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let cut = cut_point(rest, max);
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The byte index at which to end the first piece of `s` (0 < index ≤ max, on a char boundary).
fn cut_point(s: &str, max: usize) -> usize {
    let mut hard = 0; // last boundary where a cut keeps grapheme clusters whole
    let mut any = 0; // last char boundary at all
    let mut soft = 0; // last boundary just after whitespace
    let mut prev: Option<char> = None;
    for (i, c) in s.char_indices() {
        if i > max {
            break;
        }
        if i > 0 {
            any = i;
            let keeps_cluster =
                !is_extending(c) && prev != Some('\u{200d}') && !(is_regional(c) && prev.is_some_and(is_regional));
            if keeps_cluster {
                hard = i;
                if prev.is_some_and(char::is_whitespace) {
                    soft = i;
                }
            }
        }
        prev = Some(c);
    }
    // A word boundary in the last fifth of the piece reads better than a cut mid-word.
    if soft > 0 && soft >= max - max / 5 {
        soft
    } else if hard > 0 {
        hard
    } else if any > 0 {
        any
    } else {
        // One character longer than `max` bytes cannot happen for max >= 4; cut after it anyway.
        s.chars().next().map_or(s.len(), char::len_utf8)
    }
}

/// Characters that attach to the one before: combining marks, variation selectors, emoji
/// modifiers, tag characters, the zero-width joiner. A cut before one would detach it.
fn is_extending(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05BD | 0x0610..=0x061A | 0x064B..=0x065F
        | 0x0900..=0x0903 | 0x093A..=0x094F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x200C | 0x200D
        | 0x20D0..=0x20FF | 0xFE00..=0xFE0F | 0xFE20..=0xFE2F | 0x1F3FB..=0x1F3FF | 0xE0020..=0xE007F
        | 0xE0100..=0xE01EF)
}

/// Regional indicator letters: flags are pairs of them.
fn is_regional(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_up_to_160_bytes() {
        let p = plan(&"a".repeat(160), &[]).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].method, Method::Sms);
    }

    #[test]
    fn one_multibyte_character_over_160_bytes_is_an_mms() {
        // 159 ASCII + è (2 bytes) = 161 bytes: VoIP.ms answers sms_toolong to a sendSMS.
        let text = format!("{}è", "a".repeat(159));
        assert_eq!(text.chars().count(), 160);
        let p = plan(&text, &[]).unwrap();
        assert_eq!(p, vec![Part { method: Method::Mms, message: text.clone(), media: vec![] }]);
    }

    #[test]
    fn media_go_by_mms_with_the_text() {
        let media = vec!["https://up.example.com/a.jpg".to_string()];
        let p = plan("look", &media).unwrap();
        assert_eq!(p, vec![Part { method: Method::Mms, message: "look".into(), media: media.clone() }]);
        let p = plan("", &media).unwrap();
        assert_eq!(p[0].message, "");
    }

    #[test]
    fn refuses_what_cannot_be_sent() {
        assert_eq!(plan("  \n", &[]), Err(PlanError::Empty));
        let four: Vec<String> = (0..4).map(|i| format!("https://x/{i}")).collect();
        assert_eq!(plan("", &four), Err(PlanError::TooManyMedia(4)));
        assert_eq!(plan("", &["aesgcm://x/y#key".to_string()]), Err(PlanError::UnsupportedMedia));
        assert_eq!(plan("", &["https:// x".to_string()]), Err(PlanError::UnsupportedMedia));
        let huge = "a".repeat(MAX_PARTS * MMS_MAX_BYTES + 1);
        assert_eq!(plan(&huge, &[]), Err(PlanError::TooLong { bytes: huge.len() }));
    }

    #[test]
    fn long_text_is_cut_in_order_without_loss() {
        let text: String = (0..1500).map(|i| format!("word{i} ")).collect();
        let p = plan(&text, &[]).unwrap();
        assert!(p.len() > 1);
        assert!(p.iter().all(|x| x.method == Method::Mms && x.message.len() <= MMS_MAX_BYTES));
        assert_eq!(p.iter().map(|x| x.message.as_str()).collect::<String>(), text);
        // Cut after a space, not mid-word.
        assert!(p[0].message.ends_with(' '), "{:?}", &p[0].message[p[0].message.len() - 10..]);
    }

    #[test]
    fn multibyte_text_is_cut_on_character_boundaries_at_every_offset() {
        for prefix in 0..4 {
            let text = format!("{}{}", "a".repeat(prefix), "é漢😀".repeat(900));
            let pieces = split(&text, MMS_MAX_BYTES);
            assert_eq!(pieces.concat(), text);
            for piece in &pieces {
                assert!(piece.len() <= MMS_MAX_BYTES && !piece.is_empty());
            }
            // Each piece is as full as a character boundary allows (no space to prefer).
            for piece in &pieces[..pieces.len() - 1] {
                assert!(piece.len() > MMS_MAX_BYTES - 4, "{}", piece.len());
            }
        }
    }

    #[test]
    fn never_detaches_combining_marks_or_splits_emoji_sequences() {
        // e + combining acute: the cut must not fall between them.
        let text = "e\u{301}".repeat(50);
        for piece in split(&text, 7) {
            assert!(!piece.starts_with('\u{301}'), "{piece:?}");
        }
        let family = "👩\u{200d}👩\u{200d}👧";
        let text = family.repeat(20);
        for piece in split(&text, 30) {
            assert!(!piece.starts_with('\u{200d}') && !piece.ends_with('\u{200d}'), "{piece:?}");
        }
        let flags = "🇨🇦🇺🇸".repeat(20);
        for piece in split(&flags, 18) {
            assert_eq!(piece.chars().count() % 2, 0, "{piece:?}");
        }
        // A cluster longer than the limit still gets cut rather than looping.
        let zalgo = format!("a{}", "\u{301}".repeat(100));
        assert_eq!(split(&zalgo, 16).concat(), zalgo);
    }
}
