//! A Kafka broker that requires SASL, for the security tests: tansu behind a
//! gateway of ours. tansu 0.6 has no PLAIN and cannot be given SCRAM users
//! (see ../shared/notes/test-broker.md), so the gateway speaks just enough of
//! the Kafka protocol to authenticate each client connection (PLAIN,
//! SCRAM-SHA-256, SCRAM-SHA-512 as RFC 5802/7677 and Kafka's KIP-84 define
//! them), then pipes its bytes to tansu unchanged. tansu advertises the
//! gateway (or, for SASL_SSL, a TLS terminator in front of it), so every
//! connection a client opens after the bootstrap one goes through it too.
//! The crypto is OpenSSL's, which the build already compiles for
//! librdkafka and sqlx.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use openssl::hash::{MessageDigest, hash};
use openssl::pkey::PKey;
use openssl::sign::Signer;
use rdkafka::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::tls::{Pki, Terminator};
use super::{Broker, free_port};

const API_VERSIONS: i16 = 18;
const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// Requests before authentication are tiny; a larger frame is an attack
/// or a client that is not speaking SASL, not worth buffering.
const MAX_UNAUTHENTICATED_FRAME: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub const ALL: [Mechanism; 3] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
    ];

    /// The name in `sasl.mechanism` and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    fn digest(self) -> MessageDigest {
        match self {
            Mechanism::ScramSha512 => MessageDigest::sha512(),
            _ => MessageDigest::sha256(),
        }
    }
}

/// Who may log in, and how.
#[derive(Clone)]
pub struct Accounts {
    pub users: BTreeMap<String, String>,
    pub mechanisms: Vec<Mechanism>,
}

impl Accounts {
    /// One user, every mechanism.
    pub fn one(user: &str, password: &str) -> Accounts {
        Accounts {
            users: BTreeMap::from([(user.to_owned(), password.to_owned())]),
            mechanisms: Mechanism::ALL.to_vec(),
        }
    }
}

/// The gateway on 127.0.0.1, forwarding authenticated connections to
/// `upstream`. It runs on a runtime of its own, so that a test blocking its
/// threads on a child process cannot starve it; dropped, it stops.
pub struct Gateway {
    pub addr: String,
    /// The mechanism of each login the gateway refused: a client may also
    /// give up on its own (SCRAM clients check the server's signature, so
    /// a wrong password fails even at a gateway that checks nothing), and
    /// tests must tell the two apart.
    refused: Arc<Mutex<Vec<Mechanism>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Gateway {
    pub fn start(accounts: Accounts, upstream: String) -> Gateway {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // Bound here, before tansu starts: tansu must advertise this port.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accounts = Arc::new(accounts);
        let refused = Arc::new(Mutex::new(Vec::new()));
        let log = refused.clone();
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            while let Ok((client, _)) = listener.accept().await {
                let (accounts, upstream, log) = (accounts.clone(), upstream.clone(), log.clone());
                tokio::spawn(async move {
                    // A refused or dropped client simply sees its connection close.
                    let _ = serve(client, &upstream, &accounts, &log).await;
                });
            }
        });
        Gateway {
            addr,
            refused,
            runtime: Some(runtime),
        }
    }

    /// The logins refused so far, by mechanism.
    pub fn refused(&self) -> Vec<Mechanism> {
        self.refused.lock().unwrap().clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // Dropping a runtime inside the test's own runtime would panic.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// tansu reachable only through the gateway; with TLS, through a TLS
/// terminator (socat, server certificate only) in front of the gateway.
/// `broker.addr` is what clients bootstrap with.
pub struct SaslBroker {
    pub broker: Broker,
    pub gateway: Gateway,
    pub tls: Option<Terminator>,
}

impl SaslBroker {
    pub fn start(accounts: Accounts) -> SaslBroker {
        let port = free_port();
        let gateway = Gateway::start(accounts, format!("127.0.0.1:{port}"));
        let broker = Broker::spawn(port, &gateway.addr);
        SaslBroker {
            broker,
            gateway,
            tls: None,
        }
    }

    pub fn start_tls(pki: &Pki, accounts: Accounts) -> SaslBroker {
        let port = free_port();
        let gateway = Gateway::start(accounts, format!("127.0.0.1:{port}"));
        let tls = Terminator::start(pki, "server", false, &gateway.addr);
        let broker = Broker::spawn(port, &tls.addr);
        SaslBroker {
            broker,
            gateway,
            tls: Some(tls),
        }
    }

    /// A librdkafka client configuration that logs in; with TLS, the
    /// caller adds `ssl.ca.location`.
    pub fn client(&self, mechanism: Mechanism, user: &str, password: &str) -> ClientConfig {
        let protocol = match self.tls {
            Some(_) => "SASL_SSL",
            None => "SASL_PLAINTEXT",
        };
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.broker.addr)
            .set("security.protocol", protocol)
            .set("sasl.mechanism", mechanism.name())
            .set("sasl.username", user)
            .set("sasl.password", password);
        c
    }
}

/// One client connection: authenticate, then pipe.
async fn serve(
    mut client: TcpStream,
    upstream: &str,
    accounts: &Accounts,
    refused: &Mutex<Vec<Mechanism>>,
) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    let mut mechanism = None;
    let mut scram = None;
    loop {
        let frame = read_frame(&mut client).await?;
        let request = Request::parse(&frame).ok_or(std::io::ErrorKind::InvalidData)?;
        match request.api_key {
            // tansu lists SaslHandshake and SaslAuthenticate in its answer
            // (measured: 17 v0-1, 36 v0-2), as librdkafka requires before
            // it tries SASL; so the answer passes unchanged.
            API_VERSIONS => {
                write_frame(&mut server, &frame).await?;
                let answer = read_frame(&mut server).await?;
                write_frame(&mut client, &answer).await?;
            }
            // v0 and v1 answer alike. After v0 a client could send raw
            // tokens without Kafka framing; librdkafka uses v1 (then
            // SaslAuthenticate) whenever the broker lists SaslAuthenticate.
            // An unknown mechanism is answered with the list; the client
            // then gives up.
            SASL_HANDSHAKE => {
                let asked = read_str16(request.body).unwrap_or_default();
                mechanism = accounts
                    .mechanisms
                    .iter()
                    .copied()
                    .find(|m| m.name() == asked);
                let mut out = request.correlation.to_be_bytes().to_vec();
                let error = if mechanism.is_some() {
                    0
                } else {
                    UNSUPPORTED_SASL_MECHANISM
                };
                out.extend(error.to_be_bytes());
                out.extend((accounts.mechanisms.len() as i32).to_be_bytes());
                for m in &accounts.mechanisms {
                    out.extend((m.name().len() as i16).to_be_bytes());
                    out.extend(m.name().as_bytes());
                }
                write_frame(&mut client, &out).await?;
            }
            SASL_AUTHENTICATE => {
                let Some(mechanism) = mechanism else {
                    return Ok(()); // no handshake first
                };
                let flexible = request.api_version >= 2;
                let token = read_bytes(request.body, flexible).unwrap_or_default();
                let step = match mechanism {
                    Mechanism::Plain => plain(&token, accounts),
                    _ => match scram.take() {
                        None => scram_first(mechanism, &token, accounts).map(|(state, reply)| {
                            scram = Some(state);
                            Step::Continue(reply)
                        }),
                        Some(state) => scram_final(&state, &token),
                    },
                };
                let step = step.unwrap_or(Step::Refused);
                let (error, message, reply) = match &step {
                    Step::Continue(reply) | Step::Done(reply) => (0, None, reply.as_slice()),
                    // Kafka's own wording, which clients show to the user.
                    Step::Refused => (
                        SASL_AUTHENTICATION_FAILED,
                        Some(format!(
                            "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                            mechanism.name()
                        )),
                        &[][..],
                    ),
                };
                let answer = authenticate_answer(&request, error, message.as_deref(), reply);
                write_frame(&mut client, &answer).await?;
                match step {
                    Step::Continue(_) => {}
                    Step::Done(_) => break,
                    Step::Refused => {
                        refused.lock().unwrap().push(mechanism);
                        return Ok(());
                    }
                }
            }
            // Anything else before authentication: no data for strangers
            // (Kafka's SASL listeners close the connection too).
            _ => return Ok(()),
        }
    }
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

enum Step {
    /// A challenge; the client answers with another SaslAuthenticate.
    Continue(Vec<u8>),
    /// Authenticated; the last server message (SCRAM's server-final).
    Done(Vec<u8>),
    Refused,
}

/// PLAIN (RFC 4616): `[authzid] \0 user \0 password`.
fn plain(token: &[u8], accounts: &Accounts) -> Option<Step> {
    let text = std::str::from_utf8(token).ok()?;
    let mut parts = text.split('\0');
    let (_authzid, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    let known = accounts.users.get(user)?;
    // memcmp::eq compares in constant time, and panics on unequal lengths.
    let same =
        known.len() == password.len() && openssl::memcmp::eq(known.as_bytes(), password.as_bytes());
    Some(if same {
        Step::Done(Vec::new())
    } else {
        Step::Refused
    })
}

/// What the server keeps between SCRAM's two client messages.
struct Scram {
    mechanism: Mechanism,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    salted_password: Vec<u8>,
}

/// client-first `n,,n=user,r=cnonce` → server-first `r=cnonce+snonce,s=salt,i=4096`.
fn scram_first(
    mechanism: Mechanism,
    token: &[u8],
    accounts: &Accounts,
) -> Option<(Scram, Vec<u8>)> {
    let text = std::str::from_utf8(token).ok()?;
    // The GS2 header: no channel binding, maybe an authzid (`n,a=...,`).
    let (cbind, rest) = text.split_once(',')?;
    let (_authzid, bare) = rest.split_once(',')?;
    if cbind != "n" {
        return None;
    }
    let user = attribute(bare, "n")?
        .replace("=2C", ",")
        .replace("=3D", "=");
    let client_nonce = attribute(bare, "r")?;
    let password = accounts.users.get(&user)?;
    let mut salt = [0; 16];
    let mut server_nonce = [0; 18];
    openssl::rand::rand_bytes(&mut salt).ok()?;
    openssl::rand::rand_bytes(&mut server_nonce).ok()?;
    let nonce = format!("{client_nonce}{}", B64.encode(server_nonce));
    let iterations = 4096;
    let mut salted_password = vec![0; mechanism.digest().size()];
    openssl::pkcs5::pbkdf2_hmac(
        password.as_bytes(),
        &salt,
        iterations,
        mechanism.digest(),
        &mut salted_password,
    )
    .ok()?;
    let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(salt));
    let reply = server_first.clone().into_bytes();
    let state = Scram {
        mechanism,
        gs2_header: text[..text.len() - bare.len()].to_owned(),
        client_first_bare: bare.to_owned(),
        server_first,
        nonce,
        salted_password,
    };
    Some((state, reply))
}

/// client-final `c=biws,r=nonce,p=proof`: the proof is checked by recovering
/// ClientKey from it and comparing its hash with StoredKey; the answer
/// `v=ServerSignature` proves to the client that we know the password too.
fn scram_final(s: &Scram, token: &[u8]) -> Option<Step> {
    let text = std::str::from_utf8(token).ok()?;
    let (without_proof, proof) = text.rsplit_once(",p=")?;
    let proof = B64.decode(proof).ok()?;
    if attribute(without_proof, "r")? != s.nonce
        || B64.decode(attribute(without_proof, "c")?).ok()? != s.gs2_header.as_bytes()
    {
        return Some(Step::Refused);
    }
    let digest = s.mechanism.digest();
    let auth_message = format!("{},{},{without_proof}", s.client_first_bare, s.server_first);
    let client_key = hmac(digest, &s.salted_password, b"Client Key")?;
    let stored_key = hash(digest, &client_key).ok()?;
    let client_signature = hmac(digest, &stored_key, auth_message.as_bytes())?;
    if proof.len() != client_signature.len() {
        return Some(Step::Refused);
    }
    let recovered: Vec<u8> = proof
        .iter()
        .zip(&client_signature)
        .map(|(p, s)| p ^ s)
        .collect();
    if !openssl::memcmp::eq(&hash(digest, &recovered).ok()?, &stored_key) {
        return Some(Step::Refused);
    }
    let server_key = hmac(digest, &s.salted_password, b"Server Key")?;
    let server_signature = hmac(digest, &server_key, auth_message.as_bytes())?;
    Some(Step::Done(
        format!("v={}", B64.encode(server_signature)).into_bytes(),
    ))
}

fn hmac(digest: MessageDigest, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let key = PKey::hmac(key).ok()?;
    let mut signer = Signer::new(digest, &key).ok()?;
    signer.update(data).ok()?;
    signer.sign_to_vec().ok()
}

/// The value of `name=` in a SCRAM message's comma-separated attributes.
fn attribute<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .split(',')
        .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
}

/// A request's header fields that matter here, and its body.
struct Request<'a> {
    api_key: i16,
    api_version: i16,
    correlation: i32,
    body: &'a [u8],
}

impl Request<'_> {
    fn parse(frame: &[u8]) -> Option<Request<'_>> {
        let api_key = i16::from_be_bytes(frame.get(0..2)?.try_into().ok()?);
        let api_version = i16::from_be_bytes(frame.get(2..4)?.try_into().ok()?);
        let correlation = i32::from_be_bytes(frame.get(4..8)?.try_into().ok()?);
        let client_id = i16::from_be_bytes(frame.get(8..10)?.try_into().ok()?);
        let mut rest = frame.get(10 + client_id.max(0) as usize..)?;
        // Request header v2 (the flexible versions) ends in tagged fields;
        // of the requests read here, only SaslAuthenticate v2 is flexible.
        if api_key == SASL_AUTHENTICATE && api_version >= 2 {
            let count = read_uvarint(&mut rest)?;
            for _ in 0..count {
                let _tag = read_uvarint(&mut rest)?;
                let size = read_uvarint(&mut rest)? as usize;
                rest = rest.get(size..)?;
            }
        }
        Some(Request {
            api_key,
            api_version,
            correlation,
            body: rest,
        })
    }
}

/// SaslAuthenticate's answer: v0 `error, message, bytes`; v1 adds the
/// session lifetime (0: no re-authentication); v2 is flexible (compact
/// types, tagged fields, response header v1).
fn authenticate_answer(
    request: &Request,
    error: i16,
    message: Option<&str>,
    reply: &[u8],
) -> Vec<u8> {
    let flexible = request.api_version >= 2;
    let mut out = request.correlation.to_be_bytes().to_vec();
    if flexible {
        out.push(0); // response header's tagged fields
    }
    out.extend(error.to_be_bytes());
    match (message, flexible) {
        (None, true) => out.push(0),
        (None, false) => out.extend((-1i16).to_be_bytes()),
        (Some(m), true) => {
            write_uvarint(&mut out, m.len() as u64 + 1);
            out.extend(m.as_bytes());
        }
        (Some(m), false) => {
            out.extend((m.len() as i16).to_be_bytes());
            out.extend(m.as_bytes());
        }
    }
    if flexible {
        write_uvarint(&mut out, reply.len() as u64 + 1);
    } else {
        out.extend((reply.len() as i32).to_be_bytes());
    }
    out.extend(reply);
    if request.api_version >= 1 {
        out.extend(0i64.to_be_bytes());
    }
    if flexible {
        out.push(0);
    }
    out
}

fn read_str16(body: &[u8]) -> Option<String> {
    let len = i16::from_be_bytes(body.get(0..2)?.try_into().ok()?);
    String::from_utf8(body.get(2..2 + len.max(0) as usize)?.to_vec()).ok()
}

fn read_bytes(mut body: &[u8], flexible: bool) -> Option<Vec<u8>> {
    let len = if flexible {
        (read_uvarint(&mut body)? as usize).checked_sub(1)?
    } else {
        i32::from_be_bytes(body.get(0..4)?.try_into().ok()?).max(0) as usize
    };
    let start = if flexible { 0 } else { 4 };
    Some(body.get(start..start + len)?.to_vec())
}

fn read_uvarint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn write_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let size = stream.read_i32().await?;
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s <= MAX_UNAUTHENTICATED_FRAME)
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let mut frame = vec![0; size];
    stream.read_exact(&mut frame).await?;
    Ok(frame)
}

async fn write_frame(stream: &mut TcpStream, payload: &[u8]) -> std::io::Result<()> {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend(payload);
    stream.write_all(&out).await
}
