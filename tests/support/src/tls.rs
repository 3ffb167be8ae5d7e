//! `wss://` in tests: a self-signed certificate for `localhost`, made on the spot (rcgen), and
//! the rustls configurations that serve it and trust it, on ring as the server's own are.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A certificate for `localhost` and its key.
pub struct Localhost {
    made: rcgen::CertifiedKey<rcgen::KeyPair>,
}

impl Localhost {
    /// A new self-signed certificate for `localhost`.
    pub fn new() -> Localhost {
        let names = vec!["localhost".to_owned()];
        let made = rcgen::generate_simple_self_signed(names).expect("rcgen makes a certificate");
        Localhost { made }
    }

    /// The certificate, as a client's root store takes it.
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.made.cert.der().clone()
    }

    /// A server configuration that presents the certificate (`wsecho::Config::tls`).
    pub fn server_config(&self) -> ServerConfig {
        let key = PrivatePkcs8KeyDer::from(self.made.signing_key.serialize_der());
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.certificate()], PrivateKeyDer::Pkcs8(key))
            .expect("the key matches the certificate")
    }

    /// A client configuration that trusts this certificate, and nothing else.
    pub fn client_config(&self) -> ClientConfig {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.certificate())
            .expect("a certificate rcgen made parses");
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_root_certificates(roots)
            .with_no_client_auth()
    }

    /// Writes the certificate and its key as PEM files into `dir` (made if missing), for a
    /// server started with `--tls-cert` and `--tls-key`; their paths.
    pub fn write_pem(&self, dir: &Path) -> io::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, self.made.cert.pem())?;
        std::fs::write(&key, self.made.signing_key.serialize_pem())?;
        Ok((cert, key))
    }
}

/// A certificate authority made on the spot, for tests of private roots and of client
/// certificates (mutual TLS): it issues a server certificate for `localhost` and a client
/// certificate, and makes the configurations that trust it.
pub struct Authority {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    certificate: rcgen::Certificate,
}

/// A certificate an [`Authority`] issued, and its key.
pub struct Issued {
    pub certificate: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl Authority {
    /// A new authority, named `name`.
    pub fn new(name: &str) -> Authority {
        let mut params = rcgen::CertificateParams::new(Vec::new()).expect("no names to check");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("rcgen makes a key");
        let certificate = params.self_signed(&key).expect("rcgen signs");
        Authority {
            issuer: rcgen::Issuer::new(params, key),
            certificate,
        }
    }

    /// The authority's own certificate: the root a client or server trusts.
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.certificate.der().clone()
    }

    /// The authority's certificate in PEM, as a system's store holds it.
    pub fn pem(&self) -> String {
        self.certificate.pem()
    }

    /// A certificate for `localhost`, for a server (`client: false`) or a client.
    pub fn issue(&self, client: bool) -> Issued {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("localhost is a name");
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = rcgen::KeyPair::generate().expect("rcgen makes a key");
        let certificate = params.signed_by(&key, &self.issuer).expect("rcgen signs");
        Issued {
            certificate: certificate.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    /// A server configuration presenting a certificate this authority issues, and that asks
    /// clients for a certificate it issued if `clients` is given (which it requires).
    pub fn server_config(&self, clients: Option<&Authority>) -> ServerConfig {
        let issued = self.issue(false);
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions");
        let builder = match clients {
            None => builder.with_no_client_auth(),
            Some(authority) => {
                let mut roots = RootCertStore::empty();
                roots
                    .add(authority.certificate())
                    .expect("rcgen's certificate parses");
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    roots.into(),
                    provider(),
                )
                .build()
                .expect("a root to verify clients with");
                builder.with_client_cert_verifier(verifier)
            }
        };
        let chain = vec![issued.certificate, self.certificate()];
        builder
            .with_single_cert(chain, issued.key)
            .expect("the key matches the certificate")
    }

    /// A client configuration trusting this authority alone, presenting `identity` if given.
    pub fn client_config(&self, identity: Option<Issued>) -> ClientConfig {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.certificate())
            .expect("rcgen's certificate parses");
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_root_certificates(roots);
        match identity {
            None => builder.with_no_client_auth(),
            Some(issued) => builder
                .with_client_auth_cert(vec![issued.certificate], issued.key)
                .expect("the key matches the certificate"),
        }
    }
}

impl Default for Localhost {
    fn default() -> Self {
        Localhost::new()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configurations_build_and_the_files_are_pem() {
        let localhost = Localhost::new();
        let _ = (localhost.server_config(), localhost.client_config());
        let dir = std::env::temp_dir().join(format!("test-support-tls-{}", std::process::id()));
        let (cert, key) = localhost.write_pem(&dir).unwrap();
        let cert = std::fs::read_to_string(cert).unwrap();
        let key = std::fs::read_to_string(key).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
