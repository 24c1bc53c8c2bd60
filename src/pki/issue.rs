//! Issuing roots and intermediates (rcgen), with the exact profile Istio's plug-in CA expects.
//!
//! Istio's own tooling (`tools/certs/Makefile.selfsigned.mk`) makes the root `O=Istio,
//! CN=Root CA` and each cluster's intermediate `O=Istio, CN=Intermediate CA, L=<cluster>` with
//! `pathlen:0` and the SAN `DNS:istiod.istio-system.svc`; meshc issues the same, but with the
//! key algorithm and validity the topology asks for (ECDSA P-256 by default: milliseconds
//! instead of seconds per key) and random serials (rcgen's default serial is derived from
//! the key, and two certificates with one issuer and one serial are a protocol violation).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, RsaKeySize, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::{Cert, Key, Root};
use crate::topology::KeyAlgorithm;

/// Istio's istiod service name, which the intermediate carries as its one DNS SAN.
pub const ISTIOD_SAN: &str = "istiod.istio-system.svc";

/// Certificates start this long before they are made, so that a cluster whose clock runs a
/// little behind the machine that ran meshc still accepts them.
const BACKDATE: Duration = Duration::hours(1);

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("{0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("the random number generator failed")]
    Random,
    #[error("the new certificate cannot be read back: {0}")]
    Readback(String),
}

fn new_key(algorithm: KeyAlgorithm) -> Result<KeyPair, rcgen::Error> {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyAlgorithm::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyAlgorithm::Rsa2048 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
        }
        KeyAlgorithm::Rsa3072 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072)
        }
        KeyAlgorithm::Rsa4096 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096)
        }
    }
}

/// 128 random bits, positive and of fixed length (RFC 5280 allows up to 20 octets).
fn serial() -> Result<SerialNumber, IssueError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| IssueError::Random)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn base_params(
    subject: &[(DnType, &str)],
    now: OffsetDateTime,
    days: u32,
    not_after_cap: Option<OffsetDateTime>,
) -> Result<CertificateParams, IssueError> {
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for (ty, value) in subject {
        dn.push(ty.clone(), *value);
    }
    params.distinguished_name = dn;
    params.not_before = now - BACKDATE;
    let not_after = now + Duration::days(i64::from(days));
    // A certificate cannot usefully outlive its issuer.
    params.not_after = not_after_cap.map_or(not_after, |cap| not_after.min(cap));
    params.serial_number = Some(serial()?);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    Ok(params)
}

/// A self-signed mesh root: `O=Istio, CN=Root CA`, CA without a path length limit.
pub fn root(
    algorithm: KeyAlgorithm,
    days: u32,
    now: OffsetDateTime,
) -> Result<(Cert, Key), IssueError> {
    let mut params = base_params(
        &[
            (DnType::OrganizationName, "Istio"),
            (DnType::CommonName, "Root CA"),
        ],
        now,
        days,
        None,
    )?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = new_key(algorithm)?;
    let cert = params.self_signed(&key)?;
    let cert = Cert::from_der(cert.der().to_vec()).map_err(IssueError::Readback)?;
    Ok((cert, Key::from_pair(key)))
}

/// A cluster's intermediate: `O=Istio, CN=Intermediate CA, L=<cluster>`, pathlen 0,
/// SAN `DNS:istiod.istio-system.svc`, signed by the mesh's signing CA.
pub fn intermediate(
    root: &Root,
    cluster: &str,
    algorithm: KeyAlgorithm,
    days: u32,
    now: OffsetDateTime,
) -> Result<(Cert, Key), IssueError> {
    let mut params = base_params(
        &[
            (DnType::OrganizationName, "Istio"),
            (DnType::CommonName, "Intermediate CA"),
            (DnType::LocalityName, cluster),
        ],
        now,
        days,
        root.chain().map(|c| c.not_after).min(),
    )?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.subject_alt_names = vec![SanType::DnsName(ISTIOD_SAN.try_into()?)];
    params.use_authority_key_identifier_extension = true;
    let issuer = Issuer::from_ca_cert_der(&root.cert.der.clone().into(), &root.key.pair)?;
    let key = new_key(algorithm)?;
    let cert = params.signed_by(&key, &issuer)?;
    let cert = Cert::from_der(cert.der().to_vec()).map_err(IssueError::Readback)?;
    // The issuer name is written from the signing CA's parsed subject; make sure it came out
    // byte for byte and the signature verifies, or the chain would fail in the cluster.
    if !cert.is_signed_by(&root.cert) {
        return Err(IssueError::Readback(format!(
            "the new intermediate does not verify against `{}`",
            root.cert.subject
        )));
    }
    Ok((cert, Key::from_pair(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_root(algorithm: KeyAlgorithm) -> Root {
        let now = OffsetDateTime::now_utc();
        let (cert, key) = root(algorithm, 3650, now).expect("root");
        Root {
            cert,
            key,
            above: Vec::new(),
            cert_file: "root-cert.pem".into(),
            generated: true,
        }
    }

    #[test]
    fn intermediates_have_istios_profile_and_chain_to_the_root() {
        let root = make_root(KeyAlgorithm::EcdsaP256);
        assert!(root.cert.is_ca() && root.cert.is_self_signed());
        assert_eq!(root.cert.subject, "O=Istio, CN=Root CA");
        let now = OffsetDateTime::now_utc();
        let (cert, key) = intermediate(&root, "cluster1", KeyAlgorithm::EcdsaP384, 730, now)
            .expect("intermediate");
        assert_eq!(cert.subject, "O=Istio, CN=Intermediate CA, L=cluster1");
        assert_eq!(cert.issuer, root.cert.subject);
        assert_eq!(cert.basic_constraints, Some((true, Some(0))));
        assert_eq!(cert.key_cert_sign, Some(true));
        assert_eq!(cert.dns_names, vec![ISTIOD_SAN.to_string()]);
        assert_eq!(cert.key_kind, super::super::KeyKind::EcdsaP384);
        assert!(cert.is_signed_by(&root.cert));
        assert!(cert.matches(&key));
        assert!(!cert.matches(&root.key));
        assert_eq!(cert.days_left(now), 729);
    }

    #[test]
    fn serials_differ_and_intermediates_do_not_outlive_the_root() {
        let now = OffsetDateTime::now_utc();
        let root = make_root(KeyAlgorithm::EcdsaP256);
        let (a, _) = intermediate(&root, "a", KeyAlgorithm::EcdsaP256, 36500, now).expect("a");
        let (b, _) = intermediate(&root, "b", KeyAlgorithm::EcdsaP256, 1, now).expect("b");
        assert_ne!(a.serial, b.serial);
        assert_eq!(a.serial.split(':').count(), 16);
        assert_eq!(a.not_after, root.cert.not_after);
    }
}
