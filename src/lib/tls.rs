//! TLS client set-up shared by the protocol clients: a rustls
//! configuration that trusts the system's certificate store, as OpenSSL,
//! curl and msmtp do, plus any `--ca-file`; exactly the given CA files
//! with `--only-ca-file`; and, only when `--insecure` is asked for by
//! name, any certificate at all. Also the handshake itself and the test
//! that tells a TLS failure (exit 76) from a network one (exit 75).
//!
//! The system store is read by rustls-native-certs, the way OpenSSL
//! finds it: `SSL_CERT_FILE` and `SSL_CERT_DIR` when set, else the
//! platform's bundle and directory (`/etc/ssl/certs` on Debian). That is
//! the one place the library looks at the environment, as every TLS
//! client on the system does. Only when the store holds no usable
//! certificate are the bundled Mozilla roots (webpki-roots) used. The
//! store is read once per process, and with `--ca-file` only when the
//! CA files do not vouch for the server on their own (same outcome,
//! without the cost of reading it in the common case).
//!
//! It does not do client certificates, revocation or key pinning.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::error::{Error, ErrorKind, Result};

/// A TLS stream over TCP.
pub type TlsStream = rustls::StreamOwned<ClientConnection, TcpStream>;

/// How to verify servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM files of CA certificates trusted besides the system's store
    /// (`--ca-file`, repeatable).
    pub ca_files: Vec<PathBuf>,
    /// Trust only `ca_files`: neither the system's store nor the bundled
    /// roots (`--only-ca-file`).
    pub ca_files_only: bool,
    /// Accept any certificate (tests only). STARTTLS is still required
    /// and credentials still need TLS: this only stops the check of the
    /// certificate.
    pub insecure: bool,
    /// Credentials may be sent over a connection without TLS
    /// (`--allow-plaintext-auth`); only a URL that asks for no STARTTLS
    /// can have such a connection.
    pub allow_plaintext_auth: bool,
}

/// Where the trusted roots came from, for `-v` and the README's promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSource {
    /// The system's store (or `SSL_CERT_FILE` / `SSL_CERT_DIR`).
    System,
    /// The bundled Mozilla roots: the system store held none.
    Bundled,
}

/// The system's trusted roots, read once: (store, source).
fn system_roots() -> &'static (RootCertStore, RootSource) {
    static ROOTS: OnceLock<(RootCertStore, RootSource)> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!("system certificate store: {e}");
        }
        let mut store = RootCertStore::empty();
        let (added, _ignored) = store.add_parsable_certificates(found.certs);
        if added > 0 {
            tracing::debug!("trusting {added} CA certificates of the system store");
            (store, RootSource::System)
        } else {
            tracing::debug!("the system store holds no CA certificate: using the bundled roots");
            let bundled = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            (bundled, RootSource::Bundled)
        }
    })
}

/// Where the roots a default [`TlsOptions`] trusts come from.
pub fn system_root_source() -> RootSource {
    system_roots().1
}

/// The rustls client configuration for `options`.
///
/// A CA file that cannot be read or holds no certificate is a
/// configuration error (exit 78) naming the file, and so is
/// `ca_files_only` with no file.
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Tls, "TLS", e.to_string()))?;
    let config = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else if !options.ca_files.is_empty() && !options.ca_files_only {
        // The CA files first: the system's store (tens of milliseconds to
        // read) only when they do not vouch for the server.
        let mut own = RootCertStore::empty();
        for path in &options.ca_files {
            add_pem(&mut own, path)?;
        }
        let verifier = CaFilesFirst {
            own: webpki_verifier(own, &provider)?,
            all: OnceLock::new(),
            options: options.clone(),
            provider: provider.clone(),
        };
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(trusted_roots(options)?)
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

fn webpki_verifier(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<rustls::client::WebPkiServerVerifier>> {
    rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::new(ErrorKind::Tls, "TLS", e.to_string()))
}

/// `--ca-file` without `--only-ca-file`: trusts what the system's store
/// and the CA files trust, as [`trusted_roots`] says, but verifies with
/// the CA files alone first and reads the system's store only when they
/// do not vouch for the server. The outcome is the same as verifying
/// against both at once (the system's store plus the files accepts all
/// the files accept); only the common case is cheaper.
#[derive(Debug)]
struct CaFilesFirst {
    own: Arc<rustls::client::WebPkiServerVerifier>,
    all: OnceLock<std::result::Result<Arc<rustls::client::WebPkiServerVerifier>, String>>,
    options: TlsOptions,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for CaFilesFirst {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Ok(ok) =
            self.own
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            return Ok(ok);
        }
        let all = self.all.get_or_init(|| {
            trusted_roots(&self.options)
                .and_then(|roots| webpki_verifier(roots, &self.provider))
                .map_err(|e| e.to_string())
        });
        match all {
            Ok(all) => {
                all.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            Err(e) => Err(rustls::Error::General(e.clone())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.own.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.own.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.own.supported_verify_schemes()
    }
}

/// The roots `options` trusts (see [`TlsOptions`]).
pub fn trusted_roots(options: &TlsOptions) -> Result<RootCertStore> {
    if options.ca_files_only && options.ca_files.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            "--only-ca-file",
            "names no CA file to trust",
        ));
    }
    let mut roots = if options.ca_files_only {
        RootCertStore::empty()
    } else {
        system_roots().0.clone()
    };
    for path in &options.ca_files {
        add_pem(&mut roots, path)?;
    }
    Ok(roots)
}

fn add_pem(roots: &mut RootCertStore, path: &Path) -> Result<()> {
    let object = path.display().to_string();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
        Error::new(ErrorKind::Config, &object, "cannot read CA file").with_source(e)
    })?;
    let mut added = 0;
    for cert in certs {
        let cert =
            cert.map_err(|e| Error::new(ErrorKind::Config, &object, "bad PEM").with_source(e))?;
        roots.add(cert).map_err(|e| {
            Error::new(ErrorKind::Config, &object, "unusable CA certificate").with_source(e)
        })?;
        added += 1;
    }
    if added == 0 {
        return Err(Error::new(
            ErrorKind::Config,
            object,
            "holds no PEM certificate",
        ));
    }
    Ok(())
}

/// Runs the TLS handshake over `tcp` for `host` and returns the stream.
/// A refused or unverifiable certificate is a `Tls` error (exit 76); a
/// connection lost during the handshake is `Temporary` (exit 75).
/// `object` names the server in errors.
pub fn handshake(
    mut tcp: TcpStream,
    host: &str,
    config: &Arc<ClientConfig>,
    object: &str,
) -> Result<TlsStream> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| Error::new(ErrorKind::Usage, object, "bad server name").with_source(e))?;
    let mut conn = ClientConnection::new(config.clone(), name)
        .map_err(|e| Error::new(ErrorKind::Tls, object, "TLS set-up failed").with_source(e))?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            if is_timeout(&e) {
                return Err(timed_out(object, tcp.read_timeout().ok().flatten()));
            }
            return Err(tls_error(object, e));
        }
    }
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// Whether a failed read or write ran into the socket's time limit
/// (`SO_RCVTIMEO` gives `WouldBlock`, "Resource temporarily unavailable",
/// which must not reach the user as the reason).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The error for a server that said nothing within the time limit
/// (`Temporary`, exit 75), naming the limit when the socket knows it.
pub fn timed_out(object: &str, limit: Option<std::time::Duration>) -> Error {
    let why = match limit {
        Some(l) => format!(
            "timed out: the server said nothing for {}",
            crate::child::describe_duration(l)
        ),
        None => "timed out: the server said nothing".to_string(),
    };
    Error::new(ErrorKind::Temporary, object, why)
}

/// Classifies an I/O error met during a handshake: rustls's own errors
/// (bad certificate, alert from the server) are `Tls`, the rest network.
fn tls_error(object: &str, e: io::Error) -> Error {
    let ours = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    if let Some(rustls::Error::InvalidCertificate(_)) = ours {
        Error::new(
            ErrorKind::Tls,
            object,
            "certificate not verified (a CA outside the system's store needs --ca-file)",
        )
        .with_source(e)
    } else if ours.is_some() {
        Error::new(ErrorKind::Tls, object, "TLS handshake failed").with_source(e)
    } else {
        Error::new(
            ErrorKind::Temporary,
            object,
            "connection lost during TLS handshake",
        )
        .with_source(e)
    }
}

/// A protocol client's connection: plain (before STARTTLS) or TLS. Under
/// TLS the socket is read through a buffer of its own: rustls asks for
/// 4 KiB at a time, which would be one system call per 4 KiB of a large
/// download.
#[derive(Debug)]
pub enum Wire {
    /// Cleartext TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<rustls::StreamOwned<ClientConnection, BufferedSocket>>),
    /// Only for the moment the plain stream moves into TLS.
    Closed,
}

impl Wire {
    /// A TLS connection from a finished [`handshake`], its socket read
    /// through a buffer of `read_buffer` bytes.
    pub fn tls(stream: TlsStream, read_buffer: usize) -> Wire {
        let rustls::StreamOwned { conn, sock } = stream;
        Wire::Tls(Box::new(rustls::StreamOwned::new(
            conn,
            BufferedSocket::new(sock, read_buffer),
        )))
    }

    /// Upgrades a plain connection to TLS in place (STARTTLS). The
    /// caller must have checked that nothing is buffered above it.
    pub fn start_tls(
        &mut self,
        host: &str,
        config: &Arc<ClientConfig>,
        object: &str,
        read_buffer: usize,
    ) -> Result<()> {
        match std::mem::replace(self, Wire::Closed) {
            Wire::Plain(tcp) => {
                *self = Wire::tls(handshake(tcp, host, config, object)?, read_buffer);
                Ok(())
            }
            other => {
                *self = other;
                Err(Error::new(
                    ErrorKind::Protocol,
                    object,
                    "STARTTLS on a TLS connection",
                ))
            }
        }
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Wire::Tls(_))
    }

    /// The TCP socket underneath (for timeouts); `None` while closed.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Wire::Plain(s) => Some(s),
            Wire::Tls(s) => Some(&s.sock.tcp),
            Wire::Closed => None,
        }
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.read(buf),
            Wire::Tls(s) => s.read(buf),
            Wire::Closed => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.write(buf),
            Wire::Tls(s) => s.write(buf),
            Wire::Closed => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Wire::Plain(s) => s.flush(),
            Wire::Tls(s) => s.flush(),
            Wire::Closed => Ok(()),
        }
    }
}

/// A TCP socket read through a buffer (writes go straight through).
#[derive(Debug)]
pub struct BufferedSocket {
    tcp: TcpStream,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
}

impl BufferedSocket {
    fn new(tcp: TcpStream, capacity: usize) -> Self {
        BufferedSocket {
            tcp,
            buf: vec![0; capacity.max(1)].into_boxed_slice(),
            pos: 0,
            end: 0,
        }
    }
}

impl Read for BufferedSocket {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.end {
            if out.len() >= self.buf.len() {
                return self.tcp.read(out);
            }
            self.end = self.tcp.read(&mut self.buf)?;
            self.pos = 0;
        }
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for BufferedSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// Opens a TCP connection to `host:port` (each resolved address in
/// turn) with `timeout` for the connect and for every read and write.
/// Failures are `Temporary` (exit 75): the server may be back later.
pub fn connect_tcp(host: &str, port: u16, timeout: Duration, object: &str) -> Result<TcpStream> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            Error::new(ErrorKind::Temporary, object, "cannot resolve the host").with_source(e)
        })?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                tcp.set_read_timeout(Some(timeout))
                    .and_then(|()| tcp.set_write_timeout(Some(timeout)))
                    .map_err(|e| {
                        Error::new(ErrorKind::Temporary, object, "socket").with_source(e)
                    })?;
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"));
    Err(Error::new(ErrorKind::Temporary, object, "cannot connect").with_source(e))
}

/// `--insecure`: accepts every certificate, but still checks that the
/// server's handshake signatures are valid for the certificate it sent.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
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
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_insecure_configurations_build() {
        client_config(&TlsOptions::default()).unwrap();
        client_config(&TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        })
        .unwrap();
    }

    #[test]
    fn ca_files_add_to_the_system_roots_or_replace_them() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("one.pem");
        std::fs::write(&pem, TEST_CA).unwrap();
        let system = trusted_roots(&TlsOptions::default()).unwrap().len();
        assert!(system > 0);
        let added = trusted_roots(&TlsOptions {
            ca_files: vec![pem.clone()],
            ..TlsOptions::default()
        })
        .unwrap();
        assert_eq!(added.len(), system + 1);
        let only = trusted_roots(&TlsOptions {
            ca_files: vec![pem],
            ca_files_only: true,
            ..TlsOptions::default()
        })
        .unwrap();
        assert_eq!(only.len(), 1);
        let err = trusted_roots(&TlsOptions {
            ca_files_only: true,
            ..TlsOptions::default()
        })
        .unwrap_err();
        assert_eq!(err.exit().code(), 78);
    }

    #[test]
    fn bad_ca_files_are_configuration_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        let err = client_config(&TlsOptions {
            ca_files: vec![missing],
            ..TlsOptions::default()
        })
        .unwrap_err();
        assert_eq!(err.exit().code(), 78);
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config(&TlsOptions {
            ca_files: vec![empty.clone()],
            ..TlsOptions::default()
        })
        .unwrap_err();
        assert_eq!(err.exit().code(), 78);
        assert!(err.to_string().contains("empty.pem"), "{err}");
    }

    /// A self-signed CA certificate made for these tests (`openssl req
    /// -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj
    /// '/CN=mailbot test CA' -days 36500 -addext
    /// basicConstraints=critical,CA:TRUE`; its key was thrown away).
    const TEST_CA: &str = include_str!("../../fixtures/tls/test-ca.pem");
}
