//! Mutual TLS with rustls: loading the PEM files and checking peer identities.
//!
//! Naming scheme: node `n`'s certificate carries the DNS subject alternative name
//! [`node_server_name`]`(n)` = `node-<n>.synod`. A connecting node verifies the server
//! it dialled against the cluster CA *and* that name, and the accepting node verifies
//! the client certificate against the CA and then that it names the node id claimed
//! in the handshake. A member therefore cannot impersonate another member.

use super::config::TlsConfig;
use rustls::client::verify_server_name;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use synod_core::NodeId;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The DNS name node `node`'s certificate must carry: `node-<id>.synod`.
pub fn node_server_name(node: NodeId) -> String {
    format!("node-{}.synod", node.0)
}

/// Why the TLS files could not be turned into a configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be opened or read.
    #[error("cannot read TLS {role} file {path}: {source}")]
    Read {
        /// Which file (`"CA certificate"`, `"certificate"`, `"private key"`).
        role: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the expected kind.
    #[error("TLS {role} file {path} is not usable: {reason}")]
    Unusable {
        /// Which file.
        role: &'static str,
        /// Its path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the combination (e.g. key does not match certificate).
    #[error("TLS configuration rejected: {0}")]
    Rustls(String),
}

/// Both directions' TLS configuration for one node.
#[derive(Clone)]
pub(crate) struct TlsContext {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) connector: TlsConnector,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsContext")
    }
}

const CA_ROLE: &str = "CA certificate";
const CERT_ROLE: &str = "certificate";
const KEY_ROLE: &str = "private key";

impl TlsContext {
    /// Loads the PEM files and checks that this node's own certificate carries its name,
    /// so a misconfigured node fails at start rather than at every peer's handshake.
    pub(crate) fn load(config: &TlsConfig, me: NodeId) -> Result<TlsContext, TlsError> {
        let ca = read_certs(&config.ca_cert, CA_ROLE)?;
        let chain = read_certs(&config.cert, CERT_ROLE)?;
        let key = read_key(&config.key)?;
        check_names_node(&chain[0], me).map_err(|reason| TlsError::Unusable {
            role: CERT_ROLE,
            path: config.cert.clone(),
            reason,
        })?;
        let mut roots = RootCertStore::empty();
        for cert in ca {
            roots.add(cert).map_err(|e| TlsError::Unusable {
                role: CA_ROLE,
                path: config.ca_cert.clone(),
                reason: e.to_string(),
            })?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(rustls_error)?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(rustls_error)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(rustls_error)?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(rustls_error)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(rustls_error)?;
        Ok(TlsContext {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }
}

/// The name a connecting node expects the server `node` to present.
pub(crate) fn server_name_of(node: NodeId) -> Result<ServerName<'static>, String> {
    ServerName::try_from(node_server_name(node)).map_err(|e| e.to_string())
}

/// Checks, after the TLS handshake, that the client's (CA-verified) certificate names
/// the node its Synod handshake claims to be.
pub(crate) fn check_client_identity(
    conn: &ServerConnection,
    claimed: NodeId,
) -> Result<(), String> {
    let leaf = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| "no client certificate".to_owned())?;
    check_names_node(leaf, claimed)
}

fn check_names_node(cert: &CertificateDer<'_>, node: NodeId) -> Result<(), String> {
    let parsed = ParsedCertificate::try_from(cert).map_err(|e| e.to_string())?;
    let name = server_name_of(node)?;
    verify_server_name(&parsed, &name).map_err(|e| {
        format!(
            "certificate does not carry the name {}: {e}",
            node_server_name(node)
        )
    })
}

fn open(path: &Path, role: &'static str) -> Result<BufReader<File>, TlsError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| TlsError::Read {
            role,
            path: path.to_owned(),
            source,
        })
}

fn read_certs(path: &Path, role: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut reader = open(path, role)?;
    let certs = rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Unusable {
            role,
            path: path.to_owned(),
            reason: format!("malformed PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Unusable {
            role,
            path: path.to_owned(),
            reason: "no PEM CERTIFICATE section".to_owned(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let mut reader = open(path, KEY_ROLE)?;
    let unusable = |reason: String| TlsError::Unusable {
        role: KEY_ROLE,
        path: path.to_owned(),
        reason,
    };
    rustls_pemfile::private_key(&mut reader)
        .map_err(|e| unusable(format!("malformed PEM: {e}")))?
        .ok_or_else(|| unusable("no PEM PRIVATE KEY section".to_owned()))
}

fn rustls_error(e: impl std::fmt::Display) -> TlsError {
    TlsError::Rustls(e.to_string())
}
