//! Kafka's protocol spoken by hand, just enough to tell a listener apart:
//! ApiVersions (answered by any broker, before any SASL handshake) and
//! Metadata (refused by one that wants SASL first). librdkafka does not
//! say which of these a silent listener does.

use std::io::{Read, Write};

use super::connect;

/// What a Kafka conversation shows of a listener.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Conversation {
    /// No answer in Kafka's protocol.
    NotKafka,
    /// ApiVersions answered, then the connection closed at Metadata: the
    /// listener wants SASL first.
    WantsSasl,
    Answers,
}

pub(super) fn converse<S: Read + Write>(s: &mut S) -> Result<Conversation, String> {
    if !request_api_versions(s)? {
        return Ok(Conversation::NotKafka);
    }
    Ok(match request_metadata(s) {
        Ok(true) => Conversation::Answers,
        _ => Conversation::WantsSasl,
    })
}

/// Whether the listener answers a plaintext ApiVersions request as a Kafka
/// broker would; `None` when it cannot be reached.
pub(super) fn speaks_kafka(address: &str) -> Option<bool> {
    let mut tcp = connect(address)?;
    Some(request_api_versions(&mut tcp).unwrap_or(false))
}

/// Sends ApiVersions v0 (no body) and reads the answer: `Ok(true)` for an
/// answer to it, `Ok(false)` for something else, `Err` for an error on the
/// connection (a TLS alert, in OpenSSL's words).
fn request_api_versions<S: Read + Write>(s: &mut S) -> Result<bool, String> {
    request(s, 18, 0, &[])
}

/// Sends Metadata v1 for no topic and reads the answer. A listener that
/// requires SASL answers ApiVersions (clients ask it before the SASL
/// handshake) and closes the connection at this one.
fn request_metadata<S: Read + Write>(s: &mut S) -> Result<bool, String> {
    request(s, 3, 1, &0i32.to_be_bytes())
}

/// One request with header v1 (`outreach` as client id) and its whole
/// answer, whose correlation id must match.
fn request<S: Read + Write>(
    s: &mut S,
    api: i16,
    version: i16,
    body: &[u8],
) -> Result<bool, String> {
    const CORRELATION: i32 = 0x6f75_7472;
    let client = b"outreach";
    let mut request = Vec::with_capacity(22 + body.len());
    request.extend_from_slice(&((10 + client.len() + body.len()) as i32).to_be_bytes());
    request.extend_from_slice(&api.to_be_bytes());
    request.extend_from_slice(&version.to_be_bytes());
    request.extend_from_slice(&CORRELATION.to_be_bytes());
    request.extend_from_slice(&(client.len() as i16).to_be_bytes());
    request.extend_from_slice(client);
    request.extend_from_slice(body);
    s.write_all(&request).map_err(|e| error_text(&e))?;
    let mut header = [0u8; 8];
    s.read_exact(&mut header).map_err(|e| error_text(&e))?;
    let size = i32::from_be_bytes(header[..4].try_into().expect("4 bytes"));
    let correlation = i32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
    if !(4..1 << 20).contains(&size) || correlation != CORRELATION {
        return Ok(false);
    }
    let mut rest = vec![0u8; size as usize - 4];
    s.read_exact(&mut rest).map_err(|e| error_text(&e))?;
    Ok(true)
}

/// An IO error's words, with OpenSSL's reason where it has one (a TLS
/// alert comes as an IO error wrapping an SSL error).
fn error_text(e: &std::io::Error) -> String {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<openssl::ssl::Error>())
        .map_or_else(|| e.to_string(), |ssl| ssl.to_string())
}
