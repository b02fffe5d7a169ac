//! What the benchmarks that run the gateway without Prosody script themselves (the `webhook`
//! bench's default mode, the `outage` bench): a minimal XMPP server for the component's
//! stream, and a keep-alive webhook poster that checks each `200 ok`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use voipms_xmpp::core::xmpp::element::{Element, NsContext};
use voipms_xmpp::core::xmpp::framer::{Frame, Framer};
use voipms_xmpp::core::xmpp::ns;

/// Serve an accepted component connection: answer its stream header, its handshake and every
/// ping, and hand each message to `on_message`, which returns `false` to stop. Returns when
/// the stream ends or the socket closes, or once `on_message` said stop.
pub fn serve_component(mut stream: TcpStream, mut on_message: impl FnMut(&Element) -> bool) {
    let mut writer = stream.try_clone().expect("clone");
    let mut framer = Framer::new(1 << 20, 64);
    let mut ctx = NsContext::component();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        let mut out = String::new();
        let mut more = true;
        while let Ok(Some(frame)) = framer.next_frame() {
            match frame {
                Frame::StreamHeader(bytes) => {
                    ctx = NsContext::from_header(&Element::parse_start_tag(&bytes).expect("header"));
                    out.push_str("<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' id='bench' from='sms.example.com' xmlns='jabber:component:accept'>");
                }
                Frame::Stanza(bytes) => {
                    let e = Element::parse(&bytes, &ctx).expect("stanza");
                    if e.is("handshake", ns::COMPONENT) {
                        out.push_str("<handshake/>");
                    } else if e.is("iq", ns::COMPONENT) && e.get_child("ping", ns::PING).is_some() {
                        out.push_str(&format!(
                            "<iq type='result' id='{}' from='example.com' to='sms.example.com'/>",
                            e.get_attr("id").unwrap_or("")
                        ));
                    } else if e.is("message", ns::COMPONENT) {
                        more &= on_message(&e);
                    }
                }
                Frame::StreamEnd => return,
            }
        }
        if !out.is_empty() && writer.write_all(out.as_bytes()).is_err() || !more {
            return;
        }
    }
}

/// A VoIP.ms-shaped webhook body: an SMS with this id from `from` to our DID.
pub fn sms_body(id: usize, from: &str, text: &str) -> String {
    format!(
        r#"{{"data":{{"event_type":"message.received","payload":{{"id":"{id}","type":"SMS","from":{{"phone_number":"{from}"}},"to":[{{"phone_number":"5552345678"}}],"text":"{text}","media":[]}}}}}}"#
    )
}

/// One keep-alive HTTP/1.1 connection to the gateway's webhook (key `bench-key`).
pub struct Poster {
    addr: SocketAddr,
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Poster {
    pub fn connect(addr: SocketAddr) -> Poster {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        let writer = stream.try_clone().unwrap();
        Poster { addr, writer, reader: BufReader::new(stream) }
    }

    /// Post `body` and read the answer, which must be `200 ok`.
    pub fn post(&mut self, body: &str) {
        let request = format!(
            "POST /voipms?key=bench-key HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        self.writer.write_all(request.as_bytes()).expect("send");
        let mut status = String::new();
        self.reader.read_line(&mut status).expect("status line");
        assert!(status.starts_with("HTTP/1.1 200"), "unexpected answer: {status}");
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("length");
            }
        }
        let mut answer = vec![0u8; length];
        self.reader.read_exact(&mut answer).expect("body");
        assert_eq!(answer, b"ok");
    }
}
