//! The SiLA server's TLS, made once into the data directory: a certificate authority (`sila-ca.pem`,
//! its key `sila-ca-key.pem`) and a server certificate it signs (`sila-cert.pem`, `sila-key.pem`) for
//! `localhost`, `127.0.0.1` and the addresses given, carrying the server's UUID in the extension SiLA 2
//! defines (OID 1.3.6.1.4.1.58583, the UUID's ASCII text). Keys are written readable by their owner
//! only. A client trusts `sila-ca.pem` (the interoperability tester's `--roots-cert-file`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The SiLA server-UUID extension's object identifier.
pub const UUID_OID: [u64; 7] = [1, 3, 6, 1, 4, 1, 58583];

/// The files of the server's TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The authority's certificate, for clients.
    pub ca: PathBuf,
    /// The server's certificate.
    pub cert: PathBuf,
    /// The server's key.
    pub key: PathBuf,
}

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate could not be made.
    #[error("making the SiLA certificates: {0}")]
    Make(#[from] rcgen::Error),
}

/// The TLS files in `dir`, made the first time for the server `uuid`.
pub fn ensure(dir: &Path, uuid: &str, addresses: &[IpAddr]) -> Result<TlsFiles, TlsError> {
    let files =
        TlsFiles { ca: dir.join("sila-ca.pem"), cert: dir.join("sila-cert.pem"), key: dir.join("sila-key.pem") };
    if files.ca.exists() && files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "cellos gateway SiLA CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec!["localhost".to_string()])?;
    server.distinguished_name.push(DnType::CommonName, "SiLA2");
    let mut ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1])];
    ips.extend(addresses.iter().copied().filter(|a| !a.is_unspecified()));
    ips.dedup();
    for ip in ips {
        server.subject_alt_names.push(SanType::IpAddress(ip));
    }
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.custom_extensions.push(CustomExtension::from_oid_content(&UUID_OID, uuid.as_bytes().to_vec()));
    let cert = server.signed_by(&key, &ca_cert, &ca_key)?;
    let write = |path: &Path, text: &str, private: bool| -> Result<(), TlsError> {
        let io = |source| TlsError::Io { path: path.to_path_buf(), source };
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(if private { 0o600 } else { 0o644 })
            .open(path)
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)
    };
    write(&dir.join("sila-ca-key.pem"), &ca_key.serialize_pem(), true)?;
    write(&files.key, &key.serialize_pem(), true)?;
    write(&files.cert, &cert.pem(), false)?;
    // The authority last: its presence says the set is whole.
    write(&files.ca, &ca_cert.pem(), false)?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_with_the_uuid_inside() {
        let dir = std::env::temp_dir().join(format!("cellos-sila-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let uuid = "0f8e1d2c-3b4a-4596-8877-665544332211";
        let files = ensure(&dir, uuid, &[IpAddr::from([10, 0, 0, 7])]).unwrap();
        let cert = std::fs::read_to_string(&files.cert).unwrap();
        let again = ensure(&dir, "another", &[]).unwrap();
        assert_eq!(again, files);
        assert_eq!(std::fs::read_to_string(&files.cert).unwrap(), cert, "made once");
        // The UUID's text is in the certificate's DER, under the SiLA OID.
        use base64::Engine;
        let b64: String = cert.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        // 1.3.6.1.4.1.58583 in DER: 58583 in base 128 is 3, 73, 87.
        let oid = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xc9, 0x57];
        let at = der.windows(oid.len()).position(|w| w == oid).expect("the SiLA OID");
        assert!(der[at..].windows(36).any(|w| w == uuid.as_bytes()));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&files.key).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
