//! TLS for the relay's own listener: the certificate and key files (PEM), read and checked, and the
//! certificate in force behind a resolver that a reload swaps atomically.
//!
//! The certificate file holds the server's certificate first, then any intermediates (a chain);
//! the key file one private key, PKCS#8, PKCS#1 (RSA) or SEC1 (EC). Both are read whole and checked
//! together before they are used: that each parses, and that the key is the certificate's. A
//! reload ([`Tls::reload`], on SIGHUP) reads both again; only a pair that passes replaces the one in
//! force, so a bad file is refused and the previous certificate goes on being served. A handshake
//! takes the certificate in force when it begins: new connections get the new one, connections
//! already open keep theirs.
//!
//! The server configuration is rustls with *ring* (the one provider compiled in), TLS 1.2 and 1.3,
//! no client certificates, and ALPN `http/1.1` only (the listener speaks HTTP/1; see `listener.rs`).
//! Nothing here logs or returns a key's contents: errors name the file and what is wrong with it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate or key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: not a PEM certificate chain ({reason})", path.display())]
    BadCertificate { path: PathBuf, reason: &'static str },
    #[error("{}: no certificate in it (a PEM file with -----BEGIN CERTIFICATE----- blocks, the server's first)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: not a PEM private key in PKCS#8, PKCS#1 or SEC1 form ({reason})", path.display())]
    BadKey { path: PathBuf, reason: &'static str },
    #[error("{}: the key is not usable by rustls ({reason})", path.display())]
    UnsupportedKey { path: PathBuf, reason: String },
    #[error("{} is not the key of the certificate in {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{}: the first certificate cannot be read ({reason})", path.display())]
    UnreadableCertificate { path: PathBuf, reason: String },
    #[error("building the TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// The two files of a TLS configuration, checked when the configuration was resolved; `initial`
/// is the pair as it was read then.
#[derive(Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub initial: Arc<CertifiedKey>,
}

impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key: the paths and the chain's length only.
        f.debug_struct("TlsFiles")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("chain_len", &self.initial.cert.len())
            .finish()
    }
}

impl TlsFiles {
    /// Read and check both files.
    pub fn load(cert: &Path, key: &Path) -> Result<TlsFiles, TlsError> {
        Ok(TlsFiles {
            cert: cert.to_owned(),
            key: key.to_owned(),
            initial: Arc::new(load_pair(cert, key)?),
        })
    }
}

/// The provider every TLS configuration of the relay uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read a certificate chain and its private key (PEM), and check that the key is the first
/// certificate's.
pub fn load_pair(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = read_chain(cert_path)?;
    let key = read_key(key_path)?;
    let provider = provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::UnsupportedKey {
            path: key_path.to_owned(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            cert: cert_path.to_owned(),
            key: key_path.to_owned(),
        }),
        Err(e) => Err(TlsError::UnreadableCertificate {
            path: cert_path.to_owned(),
            reason: e.to_string(),
        }),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// What is wrong with a PEM file, in words that quote nothing of it.
fn pem_reason(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a malformed BEGIN line",
        pem::Error::Base64Decode(_) => "bad base64",
        pem::Error::NoItemsFound => "nothing of the expected kind",
        pem::Error::SectionTooLarge => "a section is too large",
        _ => "unreadable",
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate {
            path: path.to_owned(),
            reason: pem_reason(&e),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_owned() });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::BadKey {
        path: path.to_owned(),
        reason: pem_reason(&e),
    })
}

/// The certificate in force, swapped whole by a reload.
pub struct CertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertResolver").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The relay's TLS: its files, the certificate in force, and the server configuration built on it.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    resolver: Arc<CertResolver>,
    config: Arc<ServerConfig>,
}

/// The ALPN protocols offered: HTTP/1.1 only.
pub const ALPN: &[&[u8]] = &[b"http/1.1"];

impl Tls {
    /// The TLS of a resolved configuration.
    pub fn new(files: &TlsFiles) -> Result<Tls, TlsError> {
        let resolver = Arc::new(CertResolver {
            current: ArcSwap::new(files.initial.clone()),
        });
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Tls {
            cert: files.cert.clone(),
            key: files.key.clone(),
            resolver,
            config: Arc::new(config),
        })
    }

    /// The server configuration for the listener's acceptor.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// The certificate chain in force.
    pub fn current_chain(&self) -> Vec<CertificateDer<'static>> {
        self.resolver.current.load().cert.clone()
    }

    /// Read both files again; if they pass, new handshakes use them. Otherwise the error, and the
    /// certificate in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let pair = load_pair(&self.cert, &self.key)?;
        self.resolver.current.store(Arc::new(pair));
        Ok(())
    }

    /// The certificate file's path (for log lines).
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }
}
