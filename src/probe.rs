//! `--probe`: is the service serving? Connect to its own address and port,
//! read the greeting, do TLS as the service is configured (STARTTLS/STLS
//! when IMAP_STARTTLS/POP3_STARTTLS=YES, implicit TLS for the -ssl
//! services), and compare the certificate served with TLS_CERTFILE's.
//! One status line and the monitoring-plugin exit codes (Nagios, Icinga,
//! s6-notifyoncheck's check script): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
//!
//! The TLS client is rustls with a verifier that accepts any certificate
//! chain: what is checked is that the certificate served is the one in
//! TLS_CERTFILE (its DER, byte for byte), not that a CA signed it (Courier
//! services mostly serve self-signed ones). The handshake's signature is
//! still verified, so the server holds that certificate's key.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

use crate::resolve::{Input, Resolved, resolve};
use crate::service::{Protocol, Service};

/// Monitoring-plugin states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PluginState {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl PluginState {
    pub fn word(self) -> &'static str {
        match self {
            PluginState::Ok => "OK",
            PluginState::Warning => "WARNING",
            PluginState::Critical => "CRITICAL",
            PluginState::Unknown => "UNKNOWN",
        }
    }
}

/// The result: a state and the text after `PROTO STATE - `.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub state: PluginState,
    pub protocol: &'static str,
    pub text: String,
}

impl Verdict {
    pub fn line(&self) -> String {
        format!(
            "{} {} - {}",
            self.protocol,
            self.state.word(),
            crate::error::printable(&self.text)
        )
    }
}

/// The default bound on the whole probe.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Probe the service of `runfile`; print the line; return the exit code.
pub fn run(runfile: Option<&Path>, sets: &[String], timeout: Duration) -> anyhow::Result<i32> {
    let environ = crate::environ::inherited();
    let input = Input {
        runfile,
        sets,
        environ: &environ,
    };
    let o = probe(&resolve(&input), timeout);
    crate::report::output(format!("{}\n", o.line()).as_bytes())?;
    Ok(o.state as i32)
}

/// Where the service listens (address 0: every address, so loopback).
fn target(r: &Resolved) -> Result<SocketAddr, String> {
    if r.port.stand_in || r.address.stand_in {
        return Err("the run file or config has a problem: see --check".into());
    }
    let port = r
        .port
        .value
        .ok_or_else(|| format!("port {}: not a port", r.port.text))?;
    let host = match r.address.text.as_str() {
        "0" | "" | "0.0.0.0" => "127.0.0.1",
        "::" => "::1",
        h => h,
    };
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("address {host}: {}", crate::error::strerror(&e)))?
        .next()
        .ok_or_else(|| format!("address {host}: no address"))
}

/// How the service does TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tls {
    None,
    Starttls,
    Implicit,
}

/// The probe itself (no printing).
pub fn probe(r: &Resolved, timeout: Duration) -> Verdict {
    let protocol = match r.service.protocol() {
        Protocol::Imap => "IMAP",
        Protocol::Pop3 => "POP3",
    };
    let out = |state, text: String| Verdict {
        state,
        protocol,
        text,
    };
    // Without the config, how the service does TLS is not known.
    if let Some(p) = r.problems.first() {
        return out(PluginState::Unknown, format!("{}: {}", p.subject, p.text()));
    }
    let addr = match target(r) {
        Ok(a) => a,
        Err(e) => return out(PluginState::Unknown, e),
    };
    let tls = if r.service.is_ssl() {
        Tls::Implicit
    } else if r
        .env_value(r.service.starttls_var())
        .is_some_and(|v| v.eq_ignore_ascii_case(b"YES"))
    {
        Tls::Starttls
    } else {
        Tls::None
    };
    let deadline = Instant::now() + timeout;
    match session(r.service, addr, tls, deadline) {
        Err(e) => out(PluginState::Critical, format!("{addr}: {e}")),
        Ok((ms, None)) => out(
            PluginState::Ok,
            format!("greeting in {ms} ms (no TLS configured)"),
        ),
        Ok((ms, Some(leaf))) => {
            let (state, cert) = certificate(r, &leaf);
            let how = if tls == Tls::Starttls {
                match r.service.protocol() {
                    Protocol::Imap => "STARTTLS, ",
                    Protocol::Pop3 => "STLS, ",
                }
            } else {
                ""
            };
            out(state, format!("greeting in {ms} ms, {how}{cert}"))
        }
    }
}

/// The served certificate against TLS_CERTFILE and the clock.
fn certificate(r: &Resolved, leaf: &[u8]) -> (PluginState, String) {
    let mut state = PluginState::Ok;
    let mut parts = Vec::new();
    match r.env_value("TLS_CERTFILE").filter(|v| !v.is_empty()) {
        None => {
            state = PluginState::Critical;
            parts.push("TLS_CERTFILE is not set".to_string());
        }
        Some(p) => {
            let path = String::from_utf8_lossy(&p).into_owned();
            match std::fs::read(&path) {
                Ok(pem) => match crate::tls::first_certificate_der(&pem) {
                    Some(der) if der == leaf => {
                        parts.push("certificate matches TLS_CERTFILE".into())
                    }
                    Some(_) => {
                        state = PluginState::Critical;
                        parts.push(format!(
                            "the certificate served is not the one in TLS_CERTFILE {path} (restart the service after renewing it)"
                        ));
                    }
                    None => {
                        state = PluginState::Critical;
                        parts.push(format!("TLS_CERTFILE {path} holds no certificate"));
                    }
                },
                // A monitoring user may not read a file that holds the
                // key: the served certificate's dates are still checked.
                Err(e) => parts.push(format!(
                    "not compared with TLS_CERTFILE {path} ({})",
                    crate::error::strerror(&e)
                )),
            }
        }
    }
    match crate::tls::not_after(leaf) {
        None => {
            state = state.max(PluginState::Unknown);
            parts.push("unreadable validity dates".into());
        }
        Some((unix, text)) => {
            let left = unix - crate::tls::now();
            let days = left / 86400;
            if left <= 0 {
                state = state.max(PluginState::Critical);
                parts.push(format!("expired on {text}"));
            } else if days < i64::from(crate::tls::EXPIRY_WARN_DAYS) {
                state = state.max(PluginState::Warning);
                parts.push(format!("expires in {days} days, on {text}"));
            } else {
                parts.push(format!("expires in {days} days"));
            }
        }
    }
    (state, parts.join(", "))
}

/// Seconds left before `deadline`, as a socket timeout (never zero).
fn left(deadline: Instant) -> Result<Duration, String> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        Err("timed out".into())
    } else {
        Ok(d)
    }
}

/// Read one line (up to LF) from `r`, bounded in size.
fn read_line(r: &mut dyn Read) -> Result<String, String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 4096 {
        match r.read(&mut b) {
            Ok(0) => break,
            Ok(_) => {
                line.push(b[0]);
                if b[0] == b'\n' {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("timed out waiting for the server".into());
            }
            Err(e) => return Err(crate::error::strerror(&e)),
        }
    }
    if line.is_empty() {
        return Err("the server closed the connection without a word".into());
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_string())
}

fn greeting_ok(service: Service, line: &str) -> Result<(), String> {
    let ok = match service.protocol() {
        Protocol::Imap => line.starts_with("* OK") || line.starts_with("* PREAUTH"),
        Protocol::Pop3 => line.starts_with("+OK"),
    };
    if ok {
        Ok(())
    } else {
        let shown: String = line.chars().take(80).collect();
        Err(format!("greeting {shown:?}"))
    }
}

/// Connect, greet, TLS: (greeting milliseconds, the served leaf's DER).
fn session(
    service: Service,
    addr: SocketAddr,
    tls: Tls,
    deadline: Instant,
) -> Result<(u128, Option<Vec<u8>>), String> {
    let t0 = Instant::now();
    let mut sock = TcpStream::connect_timeout(&addr, left(deadline)?)
        .map_err(|e| format!("unable to connect: {}", crate::error::strerror(&e)))?;
    let timeouts = |s: &TcpStream| -> Result<(), String> {
        let d = Some(left(deadline)?);
        s.set_read_timeout(d)
            .and_then(|_| s.set_write_timeout(d))
            .map_err(|e| crate::error::strerror(&e))
    };
    timeouts(&sock)?;
    let imap = service.protocol() == Protocol::Imap;
    if tls != Tls::Implicit {
        let g = read_line(&mut sock)?;
        let ms = t0.elapsed().as_millis();
        greeting_ok(service, &g)?;
        if tls == Tls::None {
            let _ = sock.write_all(if imap { b"a1 LOGOUT\r\n" } else { b"QUIT\r\n" });
            return Ok((ms, None));
        }
        let (cmd, want): (&[u8], &str) = if imap {
            (b"a1 STARTTLS\r\n", "a1 ")
        } else {
            (b"STLS\r\n", "")
        };
        sock.write_all(cmd)
            .map_err(|e| format!("unable to send STARTTLS: {}", crate::error::strerror(&e)))?;
        loop {
            let l = read_line(&mut sock)?;
            if imap && !l.starts_with(want) {
                continue; // untagged lines
            }
            let ok = if imap {
                l.starts_with("a1 OK")
            } else {
                l.starts_with("+OK")
            };
            if !ok {
                return Err(format!(
                    "STARTTLS refused: {:?}",
                    l.chars().take(80).collect::<String>()
                ));
            }
            break;
        }
        let leaf = handshake(&mut sock, addr.ip(), deadline, |_| Ok(()))?;
        return Ok((ms, Some(leaf)));
    }
    let mut ms = 0;
    let leaf = handshake(&mut sock, addr.ip(), deadline, |s| {
        let g = read_line(s)?;
        ms = t0.elapsed().as_millis();
        greeting_ok(service, &g)
    })?;
    Ok((ms, Some(leaf)))
}

/// The TLS handshake on `sock`; then `after` over the TLS stream (the
/// -ssl services' greeting). Returns the leaf certificate's DER.
fn handshake(
    sock: &mut TcpStream,
    ip: IpAddr,
    deadline: Instant,
    after: impl FnOnce(&mut dyn Read) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let mut conn = ClientConnection::new(Arc::new(config), ServerName::from(ip))
        .map_err(|e| format!("TLS: {e}"))?;
    while conn.is_handshaking() {
        left(deadline)?;
        conn.complete_io(sock)
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
    }
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .ok_or("the server sent no certificate")?;
    let mut stream = rustls::Stream::new(&mut conn, sock);
    after(&mut stream)?;
    conn.send_close_notify();
    let _ = conn.complete_io(sock);
    Ok(leaf)
}

/// Accepts any certificate chain (the probe compares the leaf with
/// TLS_CERTFILE itself); verifies the handshake signatures with the
/// provider's algorithms, so the peer holds the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
