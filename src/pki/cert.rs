//! Certificates and private keys as the PKI checks see them: owned facts read once from the DER.
//!
//! x509-parser borrows the DER it parses, so a [`Cert`] keeps the DER and the facts the checks
//! and `meshc pki status` need (subject, validity, CA flags, the public key); signature checks
//! parse the two certificates again. A [`Key`] wraps rcgen's key pair and never shows its
//! contents, in `Debug` or anywhere else.

use std::fmt;

use rustls_pki_types::PrivateKeyDer;
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
    /// Whether Istio's plug-in CA accepts keys of this kind (ECDSA P-256/P-384, RSA).
    pub fn is_supported(&self) -> bool {
        !matches!(self, KeyKind::Other(_))
    }

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
    /// Whether the subject can be written again as an issuer name exactly: no attribute type
    /// repeated (`DC=example, DC=com`) and no multi-valued part (`CN=a+serialNumber=1`).
    pub subject_reproducible: bool,
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
        let mut seen = Vec::new();
        let subject_reproducible = x509.subject().iter_rdn().all(|rdn| {
            let mut attrs = rdn.iter();
            let single = matches!((attrs.next(), attrs.next()), (Some(_), None));
            single
                && rdn.iter().all(|a| {
                    let oid = a.attr_type().to_id_string();
                    let new = !seen.contains(&oid);
                    seen.push(oid);
                    new
                })
        });
        Ok(Cert {
            subject_reproducible,
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
            return Err("no private key in the file".to_string());
        };
        if keys.next().is_some() {
            return Err("more than one private key in the file".to_string());
        }
        let line = block.line;
        // Messages name formats, never PEM labels: nothing meshc prints looks like a key.
        let Some(format) = format_name(&block.label) else {
            return Err(format!(
                "line {line}: a key in a format meshc does not read (PKCS#8, PKCS#1 RSA or SEC1 EC only)"
            ));
        };
        if block.label == "ENCRYPTED PRIVATE KEY" {
            return Err(
                "the key is encrypted: write it unencrypted (`openssl pkey -in KEY -out KEY.pem`), mode 0600"
                    .to_string(),
            );
        }
        // The contents must be what the label says: istiod picks its parser by the label, so
        // a PKCS#8 key labelled as PKCS#1 would load here and fail there.
        let found = der_key_format(&block.der);
        if found != Some(block.label.as_str()) {
            return Err(match found.and_then(format_name) {
                Some(actual) => {
                    format!("line {line}: the key is labelled {format} but holds a {actual} key")
                }
                None => format!("line {line}: not a usable {format} key"),
            });
        }
        let der = block.der.clone();
        let typed = match block.label.as_str() {
            "PRIVATE KEY" => PrivateKeyDer::Pkcs8(der.into()),
            "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(der.into()),
            _ => PrivateKeyDer::Sec1(der.into()),
        };
        let unusable =
            || format!("line {line}: not a usable {format} key (RSA, or ECDSA P-256 or P-384)");
        let pair = rcgen::KeyPair::try_from(&typed).map_err(|_| unusable())?;
        if !matches!(
            key_kind_of(&pair),
            KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::Rsa(_)
        ) {
            return Err(unusable());
        }
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

fn key_kind_of(pair: &rcgen::KeyPair) -> KeyKind {
    let alg = pair.algorithm();
    if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        KeyKind::EcdsaP256
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        KeyKind::EcdsaP384
    } else if alg == &rcgen::PKCS_RSA_SHA256
        || alg == &rcgen::PKCS_RSA_SHA384
        || alg == &rcgen::PKCS_RSA_SHA512
    {
        // The size is read from the certificate; here only the family matters.
        KeyKind::Rsa(0)
    } else {
        KeyKind::Other(format!("{alg:?}"))
    }
}

/// The name of the key format a PEM label stands for.
fn format_name(label: &str) -> Option<&'static str> {
    match label {
        "PRIVATE KEY" => Some("PKCS#8"),
        "RSA PRIVATE KEY" => Some("PKCS#1 (RSA)"),
        "EC PRIVATE KEY" => Some("SEC1 (EC)"),
        "ENCRYPTED PRIVATE KEY" => Some("encrypted PKCS#8"),
        _ => None,
    }
}

/// The PEM label a DER private key's structure calls for: PKCS#8 `PrivateKeyInfo` is
/// `SEQUENCE { INTEGER, SEQUENCE, ... }`, PKCS#1 `RSAPrivateKey` is
/// `SEQUENCE { INTEGER 0, INTEGER, ... }`, SEC1 `ECPrivateKey` is
/// `SEQUENCE { INTEGER 1, OCTET STRING, ... }`.
fn der_key_format(der: &[u8]) -> Option<&'static str> {
    /// Skips one tag-length header at `at`; returns (tag, start of contents, end).
    fn header(der: &[u8], at: usize) -> Option<(u8, usize, usize)> {
        let tag = *der.get(at)?;
        let first = *der.get(at + 1)?;
        let (len, start) = if first < 0x80 {
            (usize::from(first), at + 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let mut len = 0usize;
            for i in 0..n {
                len = (len << 8) | usize::from(*der.get(at + 2 + i)?);
            }
            (len, at + 2 + n)
        };
        Some((tag, start, start.checked_add(len)?))
    }
    let (outer, start, _) = header(der, 0)?;
    let (version_tag, version_start, version_end) = header(der, start)?;
    if outer != 0x30 || version_tag != 0x02 {
        return None;
    }
    let version = der.get(version_start..version_end)?;
    let (next, _, _) = header(der, version_end)?;
    match (version, next) {
        (_, 0x30) => Some("PRIVATE KEY"),
        ([0], 0x02) => Some("RSA PRIVATE KEY"),
        ([1], 0x04) => Some("EC PRIVATE KEY"),
        _ => None,
    }
}
