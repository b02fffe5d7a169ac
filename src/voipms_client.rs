//! The VoIP.ms REST client: the only module that uses ureq and the only one that sends the API
//! credentials anywhere.
//!
//! Calls are `POST multipart/form-data` (the form the Kourlas app has used live since 2020,
//! voipms.md §1): the credentials stay out of URLs (and so out of proxy logs), and long texts
//! are not limited by URL length. Every timeout is explicit (ureq has none by default), redirects
//! are not followed (a 301 means a wrong host, §1), and the answer body is capped. Failures are
//! reported as "not sent" only when the request certainly never left; anything later is "no
//! answer", because VoIP.ms may have carried it out.

use crate::core::secret::Secret;
use crate::core::voipms::api::{CallOutcome, Request};
use std::io;
use std::time::Duration;

/// VoIP.ms answers are a few hundred bytes; a getSMS page can be larger, never this large.
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;
/// Resolve and connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Send the request.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// A configured client; cheap to clone (ureq's agent shares its connection pool).
#[derive(Debug, Clone)]
pub struct VoipmsClient {
    agent: ureq::Agent,
    url: String,
    username: String,
    password: Secret,
}

impl VoipmsClient {
    /// A client for `url` with these credentials; `timeout` bounds the wait for an answer.
    pub fn new(url: &str, username: &str, password: Secret, timeout: Duration) -> VoipmsClient {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_resolve(Some(CONNECT_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_send_request(Some(SEND_TIMEOUT))
            .timeout_send_body(Some(SEND_TIMEOUT))
            .timeout_recv_response(Some(timeout))
            .timeout_recv_body(Some(timeout))
            .user_agent(concat!("voipms-xmpp/", env!("CARGO_PKG_VERSION")))
            .build();
        VoipmsClient { agent: config.new_agent(), url: url.to_string(), username: username.to_string(), password }
    }

    /// Make one call (blocking; run it on a worker thread).
    pub fn call(&self, request: &Request) -> CallOutcome {
        let mut fields: Vec<(&str, &str)> = vec![
            ("api_username", &self.username),
            ("api_password", self.password.expose()),
            ("method", request.method()),
        ];
        let params = request.params();
        fields.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
        let (content_type, body) = multipart(&fields);
        let result = self
            .agent
            .post(&self.url)
            .header("Content-Type", &content_type)
            .header("Accept", "application/json")
            .send(&body[..]);
        match result {
            Ok(mut response) => {
                let status = response.status().as_u16();
                match response.body_mut().with_config().limit(MAX_ANSWER_BYTES).read_to_vec() {
                    Ok(bytes) => CallOutcome::Response { status, body: String::from_utf8_lossy(&bytes).into_owned() },
                    Err(e) => CallOutcome::NoAnswer(describe(&e)),
                }
            }
            Err(e) if never_sent(&e) => CallOutcome::NotSent(describe(&e)),
            Err(e) => CallOutcome::NoAnswer(describe(&e)),
        }
    }
}

/// Errors that happen before a single byte of the request reached VoIP.ms.
fn never_sent(e: &ureq::Error) -> bool {
    use ureq::Error as E;
    match e {
        E::HostNotFound
        | E::ConnectionFailed
        | E::BadUri(_)
        | E::Tls(_)
        | E::Rustls(_)
        | E::Pem(_)
        | E::TlsRequired => true,
        E::RequireHttpsOnly(_) | E::InvalidProxyUrl | E::ConnectProxyFailed(_) => true,
        E::Timeout(t) => matches!(t, ureq::Timeout::Resolve | ureq::Timeout::Connect),
        E::Io(io) => matches!(
            io.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::AddrNotAvailable
                | io::ErrorKind::NotFound
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable
        ),
        _ => false,
    }
}

/// A description without URLs or parameters (they can hold the password).
fn describe(e: &ureq::Error) -> String {
    use ureq::Error as E;
    match e {
        E::Timeout(t) => format!("timeout ({t:?})"),
        E::Io(io) => format!("{:?}", io.kind()),
        E::HostNotFound => "host not found".into(),
        E::ConnectionFailed => "connection failed".into(),
        E::Tls(why) => format!("TLS: {why}"),
        E::Rustls(_) | E::Pem(_) => "TLS failure".into(),
        E::BodyExceedsLimit(n) => format!("answer larger than {n} bytes"),
        E::Protocol(_) => "malformed HTTP answer".into(),
        _ => "request failed".into(),
    }
}

/// Encode fields as `multipart/form-data` (RFC 7578). Returns the content type and the body.
pub fn multipart(fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    // A boundary that cannot occur in any value: fixed text plus a length-derived tag, checked.
    let mut boundary = String::from("voipms-xmpp-boundary-7f3a9c");
    while fields.iter().any(|(_, v)| v.contains(&boundary)) {
        boundary.push('x');
    }
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_encoding() {
        let (ct, body) = multipart(&[("method", "sendSMS"), ("message", "héllo\r\nworld")]);
        assert_eq!(ct, "multipart/form-data; boundary=voipms-xmpp-boundary-7f3a9c");
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            "--voipms-xmpp-boundary-7f3a9c\r\nContent-Disposition: form-data; name=\"method\"\r\n\r\nsendSMS\r\n\
             --voipms-xmpp-boundary-7f3a9c\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nhéllo\r\nworld\r\n\
             --voipms-xmpp-boundary-7f3a9c--\r\n"
        );
        let (ct, _) = multipart(&[("message", "--voipms-xmpp-boundary-7f3a9c")]);
        assert!(ct.ends_with("7f3a9cx"));
    }

    #[test]
    fn unreachable_is_not_sent() {
        // Port 1 on loopback refuses connections.
        let c = VoipmsClient::new("http://127.0.0.1:1/api", "u", Secret::new("p".into()), Duration::from_secs(2));
        let r = Request::Send {
            did: crate::core::phone::Nanp::parse("5552345678").unwrap(),
            dst: crate::core::phone::Nanp::parse("5557654321").unwrap().into(),
            part: crate::core::voipms::parts::Part {
                method: crate::core::voipms::parts::Method::Sms,
                message: "x".into(),
                media: vec![],
            },
        };
        assert!(matches!(c.call(&r), CallOutcome::NotSent(_)), "{:?}", c.call(&r));
    }
}
