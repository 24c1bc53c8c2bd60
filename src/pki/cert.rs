//! Certificates and private keys as the PKI checks see them: owned facts read once from the DER.
//!
//! x509-parser borrows the DER it parses, so a [`Cert`] keeps the DER and the facts the checks
//! and `meshc pki status` need (subject, validity, CA flags, the public key); signature checks
//! parse the two certificates again. A [`Key`] wraps rcgen's key pair and never shows its
//! contents, in `Debug` or anywhere else.

use std::fmt;

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::pem;
use crate::topology::KeyAlgorithm;

/// A public key's algorithm, as the status table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    EcdsaP256,
    EcdsaP384,
    Rsa(usize),
    Other(String),
}

impl KeyKind {
    pub fn of(algorithm: KeyAlgorithm) -> KeyKind {
        match algorithm {
            KeyAlgorithm::EcdsaP256 => KeyKind::EcdsaP256,
            KeyAlgorithm::EcdsaP384 => KeyKind::EcdsaP384,
            KeyAlgorithm::Rsa2048 => KeyKind::Rsa(2048),
            KeyAlgorithm::Rsa3072 => KeyKind::Rsa(3072),
            KeyAlgorithm::Rsa4096 => KeyKind::Rsa(4096),
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::EcdsaP256 => f.write_str("ecdsa-p256"),
            KeyKind::EcdsaP384 => f.write_str("ecdsa-p384"),
            KeyKind::Rsa(bits) => write!(f, "rsa-{bits}"),
            KeyKind::Other(name) => f.write_str(name),
        }
    }
}

/// One X.509 certificate and the facts read from it.
#[derive(Debug, Clone)]
pub struct Cert {
    pub der: Vec<u8>,
    pub subject: String,
    pub issuer: String,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// `basicConstraints`: `None` when absent, else (CA, pathlen).
    pub basic_constraints: Option<(bool, Option<u32>)>,
    /// `keyUsage` keyCertSign; `None` when the extension is absent (any usage allowed).
    pub key_cert_sign: Option<bool>,
    pub dns_names: Vec<String>,
    pub key_kind: KeyKind,
    /// The subjectPublicKey bits (an EC point or an RSAPublicKey), to compare with a key.
    public_key: Vec<u8>,
}

impl Cert {
    pub fn from_der(der: Vec<u8>) -> Result<Cert, String> {
        let (rest, x509) = X509Certificate::from_der(&der)
            .map_err(|e| format!("not an X.509 certificate ({e})"))?;
        if !rest.is_empty() {
            return Err("trailing bytes after the certificate".to_string());
        }
        let basic_constraints = x509
            .basic_constraints()
            .map_err(|e| format!("invalid basicConstraints ({e})"))?
            .map(|bc| (bc.value.ca, bc.value.path_len_constraint));
        let key_cert_sign = x509
            .key_usage()
            .map_err(|e| format!("invalid keyUsage ({e})"))?
            .map(|ku| ku.value.key_cert_sign());
        let dns_names = x509
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::DNSName(d) => Some((*d).to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let spki = x509.public_key();
        let key_kind = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => KeyKind::Rsa(rsa.key_size()),
            Ok(PublicKey::EC(ec)) => match ec.key_size() {
                256 => KeyKind::EcdsaP256,
                384 => KeyKind::EcdsaP384,
                bits => KeyKind::Other(format!("ecdsa-{bits}")),
            },
            _ => KeyKind::Other(spki.algorithm.algorithm.to_id_string()),
        };
        let serial = x509
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        Ok(Cert {
            subject: x509.subject().to_string(),
            issuer: x509.issuer().to_string(),
            subject_raw: x509.subject().as_raw().to_vec(),
            issuer_raw: x509.issuer().as_raw().to_vec(),
            serial,
            not_before: x509.validity().not_before.to_datetime(),
            not_after: x509.validity().not_after.to_datetime(),
            basic_constraints,
            key_cert_sign,
            dns_names,
            key_kind,
            public_key: spki.subject_public_key.data.to_vec(),
            der,
        })
    }

    /// The certificate in canonical PEM.
    pub fn pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.der)
    }

    /// Whether this certificate may sign other certificates.
    pub fn is_ca(&self) -> bool {
        matches!(self.basic_constraints, Some((true, _))) && self.key_cert_sign != Some(false)
    }

    /// Whether this certificate may sign a CA below it (its pathlen leaves room).
    pub fn may_sign_cas(&self) -> bool {
        self.is_ca() && !matches!(self.basic_constraints, Some((true, Some(0))))
    }

    /// Whether `issuer` names and signed this certificate.
    pub fn is_signed_by(&self, issuer: &Cert) -> bool {
        if self.issuer_raw != issuer.subject_raw {
            return false;
        }
        let (Ok((_, child)), Ok((_, parent))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&issuer.der),
        ) else {
            return false;
        };
        child.verify_signature(Some(parent.public_key())).is_ok()
    }

    /// Whether the certificate names and signs itself.
    pub fn is_self_signed(&self) -> bool {
        self.is_signed_by(self)
    }

    /// Whether `key` is the private half of this certificate's public key.
    pub fn matches(&self, key: &Key) -> bool {
        rcgen::PublicKeyData::der_bytes(&key.pair) == self.public_key.as_slice()
    }

    /// Whole days from `now` until the certificate expires (negative once it has).
    pub fn days_left(&self, now: OffsetDateTime) -> i64 {
        (self.not_after - now).whole_days()
    }

    /// SHA-256 of the DER, as `AB:CD:...`.
    pub fn fingerprint(&self) -> String {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// Reads every certificate of a PEM file, in order.
pub fn certs_from_pem(text: &str) -> Result<Vec<Cert>, String> {
    let blocks = pem::parse(text).map_err(|e| e.to_string())?;
    let mut certs = Vec::new();
    for block in blocks {
        match block.label.as_str() {
            "CERTIFICATE" => certs
                .push(Cert::from_der(block.der).map_err(|e| format!("line {}: {e}", block.line))?),
            "TRUSTED CERTIFICATE" | "X509 CERTIFICATE" => {
                return Err(format!(
                    "line {}: `{}` blocks are not supported: write plain `CERTIFICATE` blocks",
                    block.line, block.label
                ));
            }
            label if label.ends_with("PRIVATE KEY") => {
                return Err(format!(
                    "line {}: a private key in a certificate file",
                    block.line
                ));
            }
            // Parameters and other blocks may sit beside certificates; they are not used.
            _ => {}
        }
    }
    if certs.is_empty() {
        return Err("no `CERTIFICATE` block in the file".to_string());
    }
    Ok(certs)
}

/// A private key. Its contents are never displayed.
pub struct Key {
    pub pair: rcgen::KeyPair,
    /// The key in PEM, as it is written to the store and into `cacerts`.
    pem: String,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<private>)")
    }
}

impl Key {
    /// Reads a private key: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1
    /// (`EC PRIVATE KEY`); `EC PARAMETERS` blocks beside it are skipped.
    pub fn from_pem(text: &str) -> Result<Key, String> {
        let blocks = pem::parse(text).map_err(|e| e.to_string())?;
        let mut keys = blocks.iter().filter(|b| b.label.ends_with("PRIVATE KEY"));
        let Some(block) = keys.next() else {
            return Err("no `PRIVATE KEY` block in the file".to_string());
        };
        if keys.next().is_some() {
            return Err("more than one private key in the file".to_string());
        }
        if block.label == "ENCRYPTED PRIVATE KEY" {
            return Err(
                "the key is encrypted: write it unencrypted (`openssl pkey -in KEY -out KEY.pem`), mode 0600"
                    .to_string(),
            );
        }
        if !matches!(
            block.label.as_str(),
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY"
        ) {
            return Err(format!(
                "line {}: `{}` keys are not supported (PKCS#8, PKCS#1 RSA or SEC1 EC only)",
                block.line, block.label
            ));
        }
        let pair = rcgen::KeyPair::try_from(block.der.as_slice()).map_err(|_| {
            format!(
                "line {}: the `{}` block is not a usable RSA or ECDSA key",
                block.line, block.label
            )
        })?;
        Ok(Key {
            pair,
            pem: pem::encode(&block.label, &block.der),
        })
    }

    pub fn from_pair(pair: rcgen::KeyPair) -> Key {
        let pem = pair.serialize_pem();
        Key { pair, pem }
    }

    /// The key in PEM. Only the store and the `cacerts` Secret may receive this.
    pub fn secret_pem(&self) -> &str {
        &self.pem
    }
}
