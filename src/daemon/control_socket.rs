//! The TCP (optionally TLS) connection to the control server, non-blocking inside the poll
//! loop. Plaintext in, plaintext out; the control client above never sees sockets or TLS.

use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub(super) struct ControlSocket {
    stream: TcpStream,
    tls: Option<ClientConnection>,
    /// Plaintext waiting for the socket (plain TCP only; TLS buffers inside rustls).
    unsent: Vec<u8>,
}

/// What a readiness event produced.
pub(super) enum Progress {
    Open,
    /// The server closed the connection (orderly or not).
    Closed(String),
}

impl ControlSocket {
    /// Starts a non-blocking connect to `addr`, marked to bypass the tunnel; with `tls`, a TLS
    /// session for `server_name` runs over it.
    pub(super) fn connect(
        addr: SocketAddr,
        tls: Option<(Arc<ClientConfig>, String)>,
    ) -> io::Result<ControlSocket> {
        let stream = TcpStream::from_std(crate::platform::socket::connect_tcp(addr)?);
        let tls = match tls {
            None => None,
            Some((config, name)) => {
                let name = ServerName::try_from(name)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                Some(ClientConnection::new(config, name).map_err(io::Error::other)?)
            }
        };
        Ok(ControlSocket { stream, tls, unsent: Vec::new() })
    }

    pub(super) fn source(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The local address this connection left from, when it is no longer one of the host's
    /// (`host`: every address the kernel lists now). Such a connection is dead without
    /// knowing it: nothing can leave from that address or come back to it, and TCP would
    /// retransmit into the void for many minutes.
    pub(super) fn vanished_local_address(&self, host: &[IpAddr]) -> Option<IpAddr> {
        let local = self.stream.local_addr().ok()?.ip();
        vanished(local, host).then_some(local)
    }

    /// Queues plaintext and writes as much as the socket takes.
    pub(super) fn send(&mut self, plaintext: &[u8]) -> io::Result<()> {
        match &mut self.tls {
            Some(tls) => tls.writer().write_all(plaintext)?,
            None => self.unsent.extend_from_slice(plaintext),
        }
        self.flush()
    }

    /// Handles readiness: flushes pending output and appends received plaintext to `received`.
    pub(super) fn on_ready(&mut self, received: &mut Vec<u8>) -> Progress {
        if let Err(e) = self.flush() {
            return Progress::Closed(e.to_string());
        }
        match self.receive(received) {
            Ok(true) => Progress::Open,
            Ok(false) => Progress::Closed("connection closed by the server".into()),
            Err(e) => Progress::Closed(e.to_string()),
        }
    }

    /// True while written bytes still wait for the socket: a sender should hold back.
    pub(super) fn is_backlogged(&self) -> bool {
        match &self.tls {
            Some(tls) => tls.wants_write(),
            None => !self.unsent.is_empty(),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(tls) = &mut self.tls {
            while tls.wants_write() {
                match tls.write_tls(&mut self.stream) {
                    Ok(_) => {}
                    Err(e) if would_block(&e) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            return Ok(());
        }
        while !self.unsent.is_empty() {
            match self.stream.write(&self.unsent) {
                Ok(n) => {
                    self.unsent.drain(..n);
                }
                Err(e) if would_block(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads until the socket would block; false once the peer has closed.
    fn receive(&mut self, received: &mut Vec<u8>) -> io::Result<bool> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let Some(tls) = &mut self.tls else {
                match self.stream.read(&mut buf) {
                    Ok(0) => return Ok(false),
                    Ok(n) => received.extend_from_slice(&buf[..n]),
                    Err(e) if would_block(&e) => return Ok(true),
                    Err(e) => return Err(e),
                }
                continue;
            };
            match tls.read_tls(&mut self.stream) {
                Ok(0) => return Ok(false),
                Ok(_) => {
                    tls.process_new_packets().map_err(io::Error::other)?;
                    let _ = tls.reader().read_to_end(received).or_else(|e| {
                        if would_block(&e) {
                            Ok(0)
                        } else {
                            Err(e)
                        }
                    })?;
                    // The handshake may want to answer.
                    self.flush()?;
                }
                Err(e) if would_block(&e) => return Ok(true),
                Err(e) => return Err(e),
            }
        }
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted
}

/// TLS settings: the system's roots, plus a CA file if one is given (for servers with a
/// private CA, such as a self-hosted Headscale).
pub(super) fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<ClientConfig>, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("reading CA file {}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("CA file {}: {e}", path.display()))?;
            roots.add(cert).map_err(|e| format!("CA file {}: {e}", path.display()))?;
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // HTTP/1.1 only: the ts2021 upgrade cannot happen over an HTTP/2 TLS session.
    Ok(Arc::new(config))
}

/// TLS settings whose certificate check is `verifier`'s (DERP's pinned or test-only nodes).
pub(super) fn tls_config_with(
    verifier: Arc<dyn rustls::client::danger::ServerCertVerifier>,
) -> Result<Arc<ClientConfig>, String> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Whether `local` is gone from the host's addresses. An empty list says nothing (the
/// listing failed): no connection is judged on it. Unspecified and loopback addresses
/// cannot vanish.
fn vanished(local: IpAddr, host: &[IpAddr]) -> bool {
    !host.is_empty() && !local.is_unspecified() && !local.is_loopback() && !host.contains(&local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_local_address_vanishes_only_when_the_host_lists_others() {
        let host = [ip("10.77.0.31"), ip("127.0.0.1"), ip("fd00::5")];
        assert!(vanished(ip("10.77.0.21"), &host), "the address moved");
        assert!(!vanished(ip("10.77.0.31"), &host));
        assert!(!vanished(ip("fd00::5"), &host));
        assert!(!vanished(ip("127.0.0.1"), &[ip("10.0.0.1")]), "loopback never goes");
        assert!(!vanished(ip("0.0.0.0"), &host), "not yet bound");
        assert!(!vanished(ip("10.77.0.21"), &[]), "a failed listing judges nothing");
    }
}
