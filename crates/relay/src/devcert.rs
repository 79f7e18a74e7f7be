//! Local development certificates (`realtime-relay cert`): a development certificate authority and
//! a server certificate signed by it for `localhost`, `127.0.0.1`, `::1` and any other names asked
//! for, so that the relay serves https and wss to clients told to trust the authority.
//!
//! Files written in the directory (the names are fixed; client tests and README use them):
//!
//! - [`CA_FILE`] `ca.pem`: the authority's certificate, what each client is told to trust;
//! - [`CA_KEY_FILE`] `ca-key.pem`: its key (mode 0600), kept so that running the command again
//!   signs a new server certificate with the same authority and clients need not trust a new one;
//! - [`CERT_FILE`] `relay.pem`: the server's certificate followed by the authority's (the chain
//!   for `--tls-cert`);
//! - [`KEY_FILE`] `relay-key.pem`: the server's key, PKCS#8 (mode 0600; for `--tls-key`).
//!
//! Keys are ECDSA P-256. The authority is valid ten years and may sign server certificates only
//! (path length 0); a server certificate 825 days, the most macOS and iOS accept. Both carry the
//! key identifiers and key usages that strict verifiers (OpenSSL's `X509_STRICT`, on by default
//! in Python 3.13's `ssl`) require.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::tls::{self, TlsError};

pub const CA_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";
pub const CERT_FILE: &str = "relay.pem";
pub const KEY_FILE: &str = "relay-key.pem";

/// The names every server certificate is made for.
pub const DEFAULT_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// The authority's subject: fixed, so that the authority is the same one when it is used again.
const CA_NAME: &str = "realtime-relay development CA";

const CA_DAYS: i64 = 3650;
const SERVER_DAYS: i64 = 825;

/// Why the certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{name:?} is neither a DNS name nor an IP address")]
    BadName { name: String },
    #[error("{} and {} are not a pair ({source}); remove both to make a new authority", dir.join(CA_FILE).display(), dir.join(CA_KEY_FILE).display())]
    CaMismatch { dir: PathBuf, source: TlsError },
    #[error("{}: {source}", path.display())]
    CaKey { path: PathBuf, source: rcgen::Error },
    #[error("making a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct DevCert {
    pub dir: PathBuf,
    /// The authority's certificate.
    pub ca: PathBuf,
    /// The server's chain.
    pub cert: PathBuf,
    /// The server's key.
    pub key: PathBuf,
    /// Whether an authority already in the directory signed it (clients that trust it keep working).
    pub ca_reused: bool,
    /// The names the server certificate is valid for.
    pub names: Vec<String>,
}

/// Write a server certificate for [`DEFAULT_NAMES`] and `hosts` into `dir` (made if missing),
/// signed by the development authority found there, or by a new one written there.
pub fn generate(dir: &Path, hosts: &[String]) -> Result<DevCert, DevCertError> {
    let mut names: Vec<String> = DEFAULT_NAMES.iter().map(|n| (*n).to_owned()).collect();
    for host in hosts.iter().map(|h| h.trim()).filter(|h| !h.is_empty()) {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        if !names.contains(&host) {
            names.push(host);
        }
    }
    let sans = names.iter().map(|n| san(n)).collect::<Result<Vec<_>, _>>()?;

    std::fs::create_dir_all(dir).map_err(|source| DevCertError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let ca_path = dir.join(CA_FILE);
    let ca_key_path = dir.join(CA_KEY_FILE);
    let now = OffsetDateTime::now_utc();
    let (ca_key, ca_reused) = if ca_path.exists() && ca_key_path.exists() {
        // The authority in the directory, if its two files are a pair.
        tls::load_pair(&ca_path, &ca_key_path).map_err(|source| DevCertError::CaMismatch {
            dir: dir.to_owned(),
            source,
        })?;
        let pem = std::fs::read_to_string(&ca_key_path).map_err(|source| DevCertError::Io {
            path: ca_key_path.clone(),
            source,
        })?;
        let key = KeyPair::from_pem(&pem).map_err(|source| DevCertError::CaKey {
            path: ca_key_path.clone(),
            source,
        })?;
        (key, true)
    } else {
        let key = KeyPair::generate()?;
        let mut params = ca_params();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(CA_DAYS);
        let cert = params.self_signed(&key)?;
        write(&ca_key_path, key.serialize_pem().as_bytes(), true)?;
        write(&ca_path, cert.pem().as_bytes(), false)?;
        (key, false)
    };
    let ca_pem = std::fs::read_to_string(&ca_path).map_err(|source| DevCertError::Io {
        path: ca_path.clone(),
        source,
    })?;
    // Signing needs the authority's subject, key identifier method and key, which `ca_params`
    // gives as they were when the authority was made.
    let issuer = Issuer::new(ca_params(), ca_key);

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "realtime-relay development server");
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(SERVER_DAYS);
    let cert = params.signed_by(&key, &issuer)?;

    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    // The key first: a reload between the two writes sees a mismatched pair and refuses it.
    write(&key_path, key.serialize_pem().as_bytes(), true)?;
    let chain = format!("{}{}", cert.pem(), ca_pem);
    write(&cert_path, chain.as_bytes(), false)?;
    Ok(DevCert {
        dir: dir.to_owned(),
        ca: ca_path,
        cert: cert_path,
        key: key_path,
        ca_reused,
        names,
    })
}

/// The authority's parameters (without its validity).
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "realtime-relay");
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn san(name: &str) -> Result<SanType, DevCertError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .enumerate()
            .all(|(i, label)| (i == 0 && label == "*") || valid_label(label));
    if !valid {
        return Err(DevCertError::BadName { name: name.to_owned() });
    }
    let ia5 = name
        .to_owned()
        .try_into()
        .map_err(|_| DevCertError::BadName { name: name.to_owned() })?;
    Ok(SanType::DnsName(ia5))
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Write a file through a temporary file and a rename, so that a reader never sees half of it;
/// `private`: readable by its owner only.
fn write(path: &Path, contents: &[u8], private: bool) -> Result<(), DevCertError> {
    let io = |source| DevCertError::Io {
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let result = (|| {
        use std::io::Write;
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

impl DevCert {
    /// What to tell the developer: the files, how to run the relay with them, and how each client
    /// trusts the authority. `me`: how to invoke the binary.
    pub fn instructions(&self, me: &str) -> String {
        let ca = self.ca.display();
        let cert = self.cert.display();
        let key = self.key.display();
        let authority = if self.ca_reused {
            "the development CA already there (clients that trust it need nothing new)"
        } else {
            "a new development CA"
        };
        format!(
            "wrote {cert} and {key}, for {names}, signed by {authority}: {ca}\n\
             \n\
             run the relay with them (or set RELAY_TLS_CERT and RELAY_TLS_KEY):\n\
             \x20 {me} --tls-cert {cert} --tls-key {key}\n\
             it then serves https://localhost:8080/ and wss://localhost:8080/realtime; after writing new\n\
             files, `kill -HUP <pid>` makes it use them for new connections.\n\
             \n\
             make each client trust {ca} (never share {ca_key}):\n\
             \x20 Node (ws, openai, rt-client):     NODE_EXTRA_CA_CERTS={ca} node app.js\n\
             \x20 Python (openai, websockets):      SSL_CERT_FILE={ca} python app.py   (replaces the default roots for that process)\n\
             \x20 curl:                             curl --cacert {ca} https://localhost:8080/healthz\n\
             \x20 browsers: import {ca} as a trusted certificate authority, or serve a real certificate\n",
            names = self.names.join(", "),
            ca_key = self.dir.join(CA_KEY_FILE).display(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("relay-devcert-{name}-{}", crate::random_token(8)));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_second_run_reuses_the_authority_and_makes_a_new_server_key() {
        let dir = scratch("reuse");
        let first = generate(&dir, &[]).unwrap();
        assert!(!first.ca_reused);
        let ca = std::fs::read(&first.ca).unwrap();
        let key = std::fs::read(&first.key).unwrap();
        tls::load_pair(&first.cert, &first.key).unwrap();
        let second = generate(&dir, &["relay.test".into(), "[fd00::1]".into()]).unwrap();
        assert!(second.ca_reused);
        assert_eq!(std::fs::read(&second.ca).unwrap(), ca, "the same authority");
        assert_ne!(std::fs::read(&second.key).unwrap(), key, "a new server key");
        assert_eq!(second.names, ["localhost", "127.0.0.1", "::1", "relay.test", "fd00::1"]);
        let pair = tls::load_pair(&second.cert, &second.key).unwrap();
        assert_eq!(pair.cert.len(), 2, "the server's certificate, then the authority's");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for private in [&second.key, &dir.join(CA_KEY_FILE)] {
                let mode = std::fs::metadata(private).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", private.display());
            }
        }
        let text = second.instructions("realtime-relay");
        assert!(text.contains("NODE_EXTRA_CA_CERTS=") && text.contains("SSL_CERT_FILE=") && text.contains("--cacert"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_name_that_is_not_a_host_is_refused() {
        let dir = scratch("bad");
        for bad in ["not a host", "-x.example", "a..b", "é.example"] {
            assert!(
                matches!(generate(&dir, &[bad.into()]), Err(DevCertError::BadName { .. })),
                "{bad}"
            );
        }
        assert!(!dir.exists(), "nothing written for a bad name");
    }
}
