//! `--check`'s TLS probes: TLS_CERTFILE (and TLS_PRIVATE_KEYFILE when set),
//! TLS_TRUSTCERTS, TLS_DHPARAMS. Read-only; returns [`Finding`]s.
//!
//! Why: a missing or broken certificate lets the service start, and every
//! TLS client then fails with nothing in the log but "No supported cipher
//! suites have been found". The certificate and key are read in pure Rust
//! (RustCrypto's `der`, `spki`, `pkcs1`, `pkcs8`, `sec1`; no curve
//! arithmetic: an EC or Ed25519 key saved without its public key cannot be
//! compared and is a warning, not a guess): a statically linked OpenSSL cost every launch ~20,000
//! relocations (~0.3 ms) for a probe only `--check` runs. Nothing here
//! verifies a signature: the probes compare keys, read names and dates.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use der::asn1::{BitStringRef, ObjectIdentifier};
use der::{AnyRef, Decode, Encode as _, Reader as _, SliceReader, Tag, TagNumber, Tagged as _};
use spki::SubjectPublicKeyInfoRef;

use crate::finding::Finding;

/// A certificate expiring within this many days is a warning.
pub const EXPIRY_WARN_DAYS: u32 = 14;

/// The identity that opens the files (uid, gid, supplementary groups).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reader {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Can `who` read `path` by the permission bits (search permission on every
/// directory on the way, read on the file)? uid 0 always can (DAC
/// override). Ok(false) with the first path that stops it.
pub fn can_read(path: &Path, who: &Reader) -> std::io::Result<Result<(), String>> {
    if who.uid == 0 {
        std::fs::metadata(path)?;
        return Ok(Ok(()));
    }
    let allowed = |m: &std::fs::Metadata, bit: u32| {
        let mode = m.permissions().mode();
        if m.uid() == who.uid {
            mode & (bit << 6) != 0
        } else if m.gid() == who.gid || who.groups.contains(&m.gid()) {
            mode & (bit << 3) != 0
        } else {
            mode & bit != 0
        }
    };
    let abs = std::path::absolute(path)?;
    let mut dir = std::path::PathBuf::from("/");
    for c in abs
        .parent()
        .into_iter()
        .flat_map(|p| p.components())
        .skip(1)
    {
        dir.push(c);
        let m = std::fs::metadata(&dir)?;
        if !allowed(&m, 0o1) {
            return Ok(Err(format!("no search permission on {}", dir.display())));
        }
    }
    let m = std::fs::metadata(path)?;
    if !allowed(&m, 0o4) {
        return Ok(Err(format!("no read permission on {}", path.display())));
    }
    Ok(Ok(()))
}

fn who_text(who: &Reader) -> String {
    let user = nix::unistd::User::from_uid(who.uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| who.uid.to_string());
    format!("{user} (uid {}, gid {})", who.uid, who.gid)
}

/// Every check of TLS_CERTFILE: it exists, `who` can read it, it holds a
/// certificate and a private key (or `keyfile` holds the key) that belong
/// together, others cannot read it, the certificate is valid now and for
/// [`EXPIRY_WARN_DAYS`] more days. `now` is a Unix time (tests pass their own).
pub fn check_certfile(
    certfile: &Path,
    keyfile: Option<&Path>,
    who: &Reader,
    now: i64,
) -> Vec<Finding> {
    let name = certfile.display();
    let make = "make one: mkimapdcert (Debian: /usr/sbin/mkimapdcert), or point TLS_CERTFILE at a PEM file holding your certificate and its private key";
    let mut out = Vec::new();
    // Each step below needs the one before: no file, no certificate in
    // it, no key to compare: the first FAIL ends the checks.
    let pem = match read_certfile(certfile, make) {
        Ok(b) => b,
        Err(f) => return vec![f],
    };
    out.extend(not_readable_by(certfile, who, make));
    let Some(cert) = first_certificate(&pem) else {
        out.push(Finding::fail(
            format!("TLS_CERTFILE {name} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
            make,
        ));
        return out;
    };
    match key_finding(certfile, keyfile, &pem, &cert) {
        Ok(f) => out.push(f),
        Err(f) => {
            out.push(f);
            return out;
        }
    }
    out.extend(world_readable(certfile, keyfile));
    out.push(validity(certfile, &cert, now));
    out
}

/// TLS_CERTFILE's bytes; a missing file is the FAIL that explains the
/// log's only words ("No supported cipher suites have been found").
fn read_certfile(certfile: &Path, make: &str) -> Result<Vec<u8>, Finding> {
    let name = certfile.display();
    std::fs::read(certfile).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Finding::fail(
            format!("TLS_CERTFILE {name} does not exist: every TLS client fails (the log says only \"No supported cipher suites have been found\")"),
            make,
        ),
        _ => Finding::fail(
            format!("TLS_CERTFILE {name}: unable to read: {e}"),
            "make the file readable by root",
        ),
    })
}

/// A FAIL when `who` (the identity couriertls runs as) cannot read the
/// file: root read it above, the server would not.
fn not_readable_by(certfile: &Path, who: &Reader, make: &str) -> Option<Finding> {
    let name = certfile.display();
    match can_read(certfile, who) {
        Ok(Ok(())) => None,
        Ok(Err(why)) => Some(Finding::fail(
            format!(
                "TLS_CERTFILE {name} is not readable by {}: {why}",
                who_text(who)
            ),
            format!(
                "chown/chmod it so that uid {} can read it (and keep it unreadable by others)",
                who.uid
            ),
        )),
        Err(e) => Some(Finding::fail(format!("TLS_CERTFILE {name}: {e}"), make)),
    }
}

/// Whether the private key (in `keyfile`, else in TLS_CERTFILE) belongs
/// to the certificate. Err: the key file cannot be read, and nothing
/// more can be said.
fn key_finding(
    certfile: &Path,
    keyfile: Option<&Path>,
    pem: &[u8],
    cert: &Cert,
) -> Result<Finding, Finding> {
    let name = certfile.display();
    let (key_path, key_pem) = match keyfile {
        Some(k) => match std::fs::read(k) {
            Ok(b) => (k.display().to_string(), b),
            Err(e) => {
                return Err(Finding::fail(
                    format!("TLS_PRIVATE_KEYFILE {}: unable to read: {e}", k.display()),
                    "point TLS_PRIVATE_KEYFILE at the certificate's private key, or unset it and put the key in TLS_CERTFILE",
                ));
            }
        },
        None => (name.to_string(), pem.to_vec()),
    };
    Ok(match key_belongs(&key_pem, &cert.spki) {
        KeyMatch::NoKey => Finding::fail(
            format!(
                "{key_path} holds no unencrypted private key (-----BEGIN ... PRIVATE KEY-----)"
            ),
            "append the certificate's private key, without a passphrase, to the file (cat cert.pem key.pem > TLS_CERTFILE)",
        ),
        KeyMatch::Yes => Finding::ok(format!(
            "{key_path}: the private key belongs to the certificate"
        )),
        KeyMatch::No => Finding::fail(
            format!(
                "{key_path}: the private key does not belong to the certificate in {name} (couriertls cannot start a TLS session)"
            ),
            "put the certificate together with the key it was made for",
        ),
        KeyMatch::Unknown(what) => Finding::warn(
            format!(
                "{key_path}: cannot tell whether the private key ({what}) belongs to the certificate: courier-run compares RSA keys, and EC and Ed25519 keys saved with their public key"
            ),
            format!(
                "compare the output of: openssl pkey -in {key_path} -pubout; openssl x509 -in {name} -noout -pubkey"
            ),
        ),
    })
}

/// A WARN for each file holding the private key that every user can read.
fn world_readable(certfile: &Path, keyfile: Option<&Path>) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in std::iter::once(certfile).chain(keyfile) {
        if let Ok(m) = std::fs::metadata(p)
            && m.permissions().mode() & 0o004 != 0
        {
            out.push(Finding::warn(
                format!(
                    "{} holds a private key and is readable by every user (mode {:03o})",
                    p.display(),
                    m.permissions().mode() & 0o777
                ),
                format!("chmod o-r {}", p.display()),
            ));
        }
    }
    out
}

/// The certificate's dates at `now`: expired or not yet valid (FAIL),
/// expiring within [`EXPIRY_WARN_DAYS`] (WARN), else the days left.
fn validity(certfile: &Path, cert: &Cert, now: i64) -> Finding {
    let name = certfile.display();
    let subject = cert.subject.join(", ");
    let renew =
        "renew the certificate (for a self-signed one: mkimapdcert after moving the old file away)";
    let (Some(not_before), Some(not_after)) = (&cert.not_before, &cert.not_after) else {
        return Finding::fail(
            format!("TLS_CERTFILE {name}: unreadable validity dates"),
            renew,
        );
    };
    // As OpenSSL's ASN1_TIME_diff: whole days toward zero.
    let left = not_after.unix - now;
    let days = left / 86400;
    if left <= 0 {
        Finding::fail(
            format!(
                "the certificate in {name} ({subject}) expired on {}: clients refuse it",
                not_after.text
            ),
            renew,
        )
    } else if days < i64::from(EXPIRY_WARN_DAYS) {
        Finding::warn(
            format!(
                "the certificate in {name} ({subject}) expires in {days} days, on {}",
                not_after.text
            ),
            renew,
        )
    } else if not_before.unix > now {
        Finding::fail(
            format!(
                "the certificate in {name} ({subject}) is not valid before {}",
                not_before.text
            ),
            "check the clock, or the certificate's dates",
        )
    } else {
        Finding::ok(format!(
            "the certificate in {name} ({subject}) is valid for {days} more days"
        ))
    }
}

// ---------------------------------------------------------------------------
// PEM.

/// The PEM blocks of `data`, in order: (label, base64 body lines, whether
/// the block has RFC 1421 headers such as `Proc-Type: 4,ENCRYPTED`). Text
/// between blocks is ignored, as OpenSSL's PEM reader does.
fn pem_blocks(data: &[u8]) -> Vec<(String, Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, Vec<u8>, bool)> = None;
    for line in data.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        match cur.as_mut() {
            None => {
                if let Some(label) = line
                    .strip_prefix(b"-----BEGIN ")
                    .and_then(|l| l.strip_suffix(b"-----"))
                {
                    cur = Some((
                        String::from_utf8_lossy(label).into_owned(),
                        Vec::new(),
                        false,
                    ));
                }
            }
            Some((label, body, headers)) => {
                if let Some(end) = line
                    .strip_prefix(b"-----END ")
                    .and_then(|l| l.strip_suffix(b"-----"))
                {
                    if end == label.as_bytes() {
                        out.extend(cur.take());
                    } else {
                        cur = None; // mismatched END: OpenSSL rejects the block
                    }
                } else if line.contains(&b':') {
                    *headers = true;
                } else {
                    body.extend(line.iter().filter(|b| !b.is_ascii_whitespace()));
                }
            }
        }
    }
    out
}

fn base64(body: &[u8]) -> Option<Vec<u8>> {
    use base64ct::{Base64, Encoding};
    Base64::decode_vec(std::str::from_utf8(body).ok()?).ok()
}

// ---------------------------------------------------------------------------
// The certificate.

/// A validity date: Unix time, and OpenSSL's text for it
/// (`ASN1_TIME_print`: `Nov 29 12:00:00 2027 GMT`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Time {
    unix: i64,
    text: String,
}

/// What the probes read from a certificate: the subject's attribute values
/// (as OpenSSL's `X509_NAME_ENTRY` data, lossy UTF-8), the validity dates
/// (None: unreadable), and the DER of its SubjectPublicKeyInfo.
struct Cert {
    subject: Vec<String>,
    not_before: Option<Time>,
    not_after: Option<Time>,
    spki: Vec<u8>,
}

/// The first certificate of a PEM file (`CERTIFICATE`, or OpenSSL's older
/// `X509 CERTIFICATE` and `TRUSTED CERTIFICATE` labels); None when there is
/// none or it does not parse.
fn first_certificate(pem: &[u8]) -> Option<Cert> {
    let (_, body, _) = pem_blocks(pem).into_iter().find(|(l, _, _)| {
        matches!(
            l.as_str(),
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE"
        )
    })?;
    parse_certificate(&base64(&body)?).ok()
}

/// The DER of the first certificate of a PEM file (as
/// [`first_certificate`] finds it): `--probe` compares it with the
/// certificate the service serves.
pub fn first_certificate_der(pem: &[u8]) -> Option<Vec<u8>> {
    let (_, body, _) = pem_blocks(pem).into_iter().find(|(l, _, _)| {
        matches!(
            l.as_str(),
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE"
        )
    })?;
    base64(&body)
}

/// A DER certificate's notAfter: Unix time and OpenSSL's text for it.
pub fn not_after(der: &[u8]) -> Option<(i64, String)> {
    let t = parse_certificate(der).ok()?.not_after?;
    Some((t.unix, t.text))
}

/// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature };
/// TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer, validity, subject, subjectPublicKeyInfo, ... }.
/// Only the fields the probes use are decoded; the rest are skipped as
/// whatever TLV they are (no strictness beyond DER's framing).
fn parse_certificate(der: &[u8]) -> der::Result<Cert> {
    let mut r = SliceReader::new(der)?;
    let cert = r.sequence(|c| {
        let tbs = c.sequence(|t| {
            let v0 = Tag::ContextSpecific {
                constructed: true,
                number: TagNumber::N0,
            };
            if t.peek_tag()? == v0 {
                t.decode::<AnyRef<'_>>()?;
            }
            t.decode::<AnyRef<'_>>()?; // serialNumber
            t.decode::<AnyRef<'_>>()?; // signature
            t.decode::<AnyRef<'_>>()?; // issuer
            let (nb, na) =
                t.sequence(|v| Ok((v.decode::<AnyRef<'_>>()?, v.decode::<AnyRef<'_>>()?)))?;
            let subject: AnyRef<'_> = t.decode()?;
            let spki: SubjectPublicKeyInfoRef<'_> = t.decode()?;
            while !t.is_finished() {
                t.decode::<AnyRef<'_>>()?;
            }
            Ok((nb, na, subject, spki))
        })?;
        while !c.is_finished() {
            c.decode::<AnyRef<'_>>()?;
        }
        Ok(tbs)
    })?;
    r.finish(())?;
    let (nb, na, subject, spki) = cert;
    Ok(Cert {
        subject: name_values(subject)?,
        not_before: asn1_time(nb),
        not_after: asn1_time(na),
        spki: spki.to_der()?,
    })
}

/// Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value ANY }: the
/// values' content bytes, in order.
fn name_values(name: AnyRef<'_>) -> der::Result<Vec<String>> {
    let mut out = Vec::new();
    name.sequence(|rdns| {
        while !rdns.is_finished() {
            let set: AnyRef<'_> = rdns.decode()?;
            let mut r = SliceReader::new(set.value())?;
            while !r.is_finished() {
                let value = r.sequence(|a| {
                    a.decode::<ObjectIdentifier>()?;
                    a.decode::<AnyRef<'_>>()
                })?;
                out.push(String::from_utf8_lossy(value.value()).into_owned());
            }
        }
        Ok(())
    })?;
    Ok(out)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A UTCTime (YYMMDDhhmm[ss]) or GeneralizedTime (YYYYMMDDhhmm[ss[.f]]),
/// ending in Z or an offset ±hhmm, as OpenSSL reads them; None for anything
/// else. The text is in GMT, in `ASN1_TIME_print`'s format.
fn asn1_time(t: AnyRef<'_>) -> Option<Time> {
    let s = std::str::from_utf8(t.value()).ok()?;
    let (year, rest) = match t.tag() {
        Tag::UtcTime => {
            let yy: i64 = digits(s.get(..2)?)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &s[2..])
        }
        Tag::GeneralizedTime => (digits(s.get(..4)?)?, &s[4..]),
        _ => return None,
    };
    let num = |i: usize| rest.get(i..i + 2).and_then(digits);
    let (month, day, hour, min) = (num(0)?, num(2)?, num(4)?, num(6)?);
    let mut rest = &rest[8..];
    let mut sec = 0;
    if let Some(s) = rest.get(..2).and_then(digits) {
        sec = s;
        rest = &rest[2..];
    }
    let mut frac = "";
    if t.tag() == Tag::GeneralizedTime && rest.starts_with('.') {
        let n = 1 + rest[1..].bytes().take_while(u8::is_ascii_digit).count();
        (frac, rest) = rest.split_at(n);
    }
    let offset = match rest.as_bytes().first()? {
        b'Z' if rest.len() == 1 => 0,
        &c @ (b'+' | b'-') if rest.len() == 5 => {
            let (h, m): (i64, i64) = (digits(&rest[1..3])?, digits(&rest[3..5])?);
            if h > 23 || m > 59 {
                return None;
            }
            (h * 3600 + m * 60) * if c == b'-' { -1 } else { 1 }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None;
    }
    let unix = days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec - offset;
    let (y, m, d) = civil_from_days(unix.div_euclid(86400));
    let s = unix.rem_euclid(86400);
    Some(Time {
        unix,
        text: format!(
            "{} {d:2} {:02}:{:02}:{:02}{frac} {y} GMT",
            MONTHS[(m - 1) as usize],
            s / 3600,
            s / 60 % 60,
            s % 60
        ),
    })
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm), and back.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

// ---------------------------------------------------------------------------
// The private key, against the certificate's public key.

/// Does the private key belong to the certificate? As OpenSSL's
/// `EVP_PKEY_eq`: same algorithm, same public key (RSA: n and e; EC: curve
/// and point; Ed25519: the 32 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
enum KeyMatch {
    Yes,
    No,
    /// No private key, or only an encrypted one, or one that does not parse.
    NoKey,
    /// A key this module cannot compare (what it is).
    Unknown(String),
}

const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The first `... PRIVATE KEY` block of `pem` (as OpenSSL's
/// `PEM_read_bio_PrivateKey`, which takes the first and fails if it cannot
/// use it), compared with the certificate's SubjectPublicKeyInfo (DER).
fn key_belongs(pem: &[u8], spki_der: &[u8]) -> KeyMatch {
    let Some((label, body, headers)) = pem_blocks(pem)
        .into_iter()
        .find(|(l, _, _)| l.ends_with("PRIVATE KEY"))
    else {
        return KeyMatch::NoKey;
    };
    // ENCRYPTED PRIVATE KEY (PKCS#8), or Proc-Type: 4,ENCRYPTED (the
    // traditional formats): couriertls has no passphrase to give.
    if headers || label == "ENCRYPTED PRIVATE KEY" {
        return KeyMatch::NoKey;
    }
    let (Some(der), Ok(spki)) = (base64(&body), SubjectPublicKeyInfoRef::from_der(spki_der)) else {
        return KeyMatch::NoKey;
    };
    let key = match label.as_str() {
        "RSA PRIVATE KEY" => rsa_key(RSA, &der),
        "EC PRIVATE KEY" => ec_key(None, &der),
        "PRIVATE KEY" => pkcs8_key(&der),
        other => Err(Some(format!("a {other}"))),
    };
    match key {
        Err(None) => KeyMatch::NoKey,
        Err(Some(what)) => KeyMatch::Unknown(what),
        Ok(k) => k.matches(&spki),
    }
}

/// A private key's public half, as far as it is known.
enum Public<'a> {
    /// n and e (leading zeros stripped), and the algorithm (RSA or RSA-PSS).
    Rsa(ObjectIdentifier, &'a [u8], &'a [u8]),
    /// The curve, and the point when the key carries it.
    Ec(ObjectIdentifier, Option<&'a [u8]>),
    /// Another algorithm (its name), with its public key when the key
    /// carries it (Ed25519 in PKCS#8 v2; a v1 key holds only the seed).
    Other(ObjectIdentifier, &'static str, Option<&'a [u8]>),
}

/// Err(None): not a usable key; Err(Some(what)): a key that cannot be compared.
type KeyResult<'a> = Result<Public<'a>, Option<String>>;

fn rsa_key(alg: ObjectIdentifier, der: &[u8]) -> KeyResult<'_> {
    let k = pkcs1::RsaPrivateKey::from_der(der).map_err(|_| None)?;
    Ok(Public::Rsa(
        alg,
        k.modulus.as_bytes(),
        k.public_exponent.as_bytes(),
    ))
}

/// SEC1 ECPrivateKey; `curve` from the PKCS#8 wrapper, if any, wins over
/// the key's own parameters.
fn ec_key(curve: Option<ObjectIdentifier>, der: &[u8]) -> KeyResult<'_> {
    let k = sec1::EcPrivateKey::from_der(der).map_err(|_| None)?;
    let curve = curve
        .or_else(|| k.parameters.and_then(|p| p.named_curve()))
        .ok_or(None)?;
    Ok(Public::Ec(curve, k.public_key))
}

fn pkcs8_key(der: &[u8]) -> KeyResult<'_> {
    let k = pkcs8::PrivateKeyInfo::from_der(der).map_err(|_| None)?;
    let oid = k.algorithm.oid;
    if oid == RSA || oid == RSA_PSS {
        rsa_key(oid, k.private_key)
    } else if oid == EC {
        ec_key(
            Some(k.algorithm.parameters_oid().map_err(|_| None)?),
            k.private_key,
        )
    } else if oid == ED25519 {
        // A PKCS#8 v2 key carries its public key; a v1 key (what OpenSSL
        // writes) holds only the seed, and deriving the point needs curve
        // arithmetic this module does not carry: it cannot be compared.
        Ok(Public::Other(oid, "Ed25519", k.public_key))
    } else if let Some(p) = k.public_key {
        Ok(Public::Other(oid, "PKCS#8", Some(p)))
    } else {
        Err(Some(format!("a PKCS#8 key of algorithm {oid}")))
    }
}

impl Public<'_> {
    fn matches(&self, spki: &SubjectPublicKeyInfoRef<'_>) -> KeyMatch {
        let oid = spki.algorithm.oid;
        let bits: &BitStringRef<'_> = &spki.subject_public_key;
        let bits = bits.raw_bytes();
        let yes = |b: bool| if b { KeyMatch::Yes } else { KeyMatch::No };
        match *self {
            Public::Rsa(alg, n, e) => {
                if oid != alg {
                    return KeyMatch::No;
                }
                match pkcs1::RsaPublicKey::from_der(bits) {
                    Ok(p) => yes(p.modulus.as_bytes() == n && p.public_exponent.as_bytes() == e),
                    Err(_) => KeyMatch::No,
                }
            }
            Public::Ec(curve, point) => {
                if oid != EC || spki.algorithm.parameters_oid().ok() != Some(curve) {
                    return KeyMatch::No;
                }
                match point {
                    Some(p) => yes(same_point(p, bits)),
                    None => KeyMatch::Unknown(format!(
                        "an EC key on curve {curve} without its public key"
                    )),
                }
            }
            Public::Other(alg, _, _) if oid != alg => KeyMatch::No,
            Public::Other(_, _, Some(public)) => yes(bits == public),
            Public::Other(_, name, None) => {
                KeyMatch::Unknown(format!("an {name} key without its public key"))
            }
        }
    }
}

/// Are two SEC1-encoded points of one curve the same point, whatever
/// their encodings? Uncompressed (04 X Y) and hybrid (06/07 X Y) carry both
/// coordinates; compressed (02/03 X) carries X and the parity of Y (02:
/// even). X is equal byte for byte; Y is compared whole where both carry
/// it, else by parity: a point of a curve is fixed by X and Y's parity, so
/// no curve arithmetic is needed.
fn same_point(a: &[u8], b: &[u8]) -> bool {
    /// X, Y when present, parity of Y.
    type Parts<'a> = (&'a [u8], Option<&'a [u8]>, u8);
    fn parts(p: &[u8]) -> Option<Parts<'_>> {
        let (&tag, rest) = p.split_first()?;
        match tag {
            2 | 3 if !rest.is_empty() => Some((rest, None, tag & 1)),
            4 | 6 | 7 if !rest.is_empty() && rest.len() % 2 == 0 => {
                let (x, y) = rest.split_at(rest.len() / 2);
                let parity = y.last().map_or(0, |b| b & 1);
                // Hybrid encodings state the parity twice: they must agree.
                if tag != 4 && tag & 1 != parity {
                    return None;
                }
                Some((x, Some(y), parity))
            }
            _ => None,
        }
    }
    match (parts(a), parts(b)) {
        (Some((xa, ya, pa)), Some((xb, yb, pb))) => {
            xa == xb
                && match (ya, yb) {
                    (Some(ya), Some(yb)) => ya == yb,
                    _ => pa == pb,
                }
        }
        _ => false,
    }
}

/// TLS_TRUSTCERTS or TLS_DHPARAMS (`var`), when set: it exists.
pub fn check_exists(var: &str, path: &Path) -> Finding {
    match std::fs::metadata(path) {
        Ok(_) => Finding::ok(format!("{var} {} exists", path.display())),
        Err(e) => {
            let fix = match var {
                "TLS_DHPARAMS" => "make it: mkdhparams (Debian: /usr/sbin/mkdhparams), or unset TLS_DHPARAMS".to_string(),
                "TLS_TRUSTCERTS" => "install ca-certificates, or point TLS_TRUSTCERTS at your CA bundle, or unset it".to_string(),
                _ => format!("create it or unset {var}"),
            };
            Finding::fail(format!("{var} {}: {e}", path.display()), fix)
        }
    }
}

/// All TLS probes from the final environment (`get(NAME)`): TLS_CERTFILE
/// (FAIL when unset: couriertls has nothing to offer), TLS_PRIVATE_KEYFILE,
/// TLS_TRUSTCERTS and TLS_DHPARAMS when set and not empty.
pub fn check_env(get: impl Fn(&str) -> Option<Vec<u8>>, who: &Reader, now: i64) -> Vec<Finding> {
    let path = |n: &str| {
        get(n)
            .filter(|v| !v.is_empty())
            .map(|v| std::path::PathBuf::from(String::from_utf8_lossy(&v).into_owned()))
    };
    let mut out = Vec::new();
    match path("TLS_CERTFILE") {
        None => out.push(Finding::fail(
            "TLS_CERTFILE is not set: couriertls has no certificate to offer",
            "set TLS_CERTFILE in the -ssl config file (Debian: /etc/courier/imapd-ssl or pop3d-ssl)",
        )),
        Some(c) => out.extend(check_certfile(&c, path("TLS_PRIVATE_KEYFILE").as_deref(), who, now)),
    }
    for var in ["TLS_TRUSTCERTS", "TLS_DHPARAMS"] {
        if let Some(p) = path(var) {
            out.push(check_exists(var, &p));
        }
    }
    out
}

/// Now, as a Unix time.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Level;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    const DAY: i64 = 86400;

    /// The `openssl` command makes the keys and certificates: the files are
    /// what the real tool writes (PKCS#1, PKCS#8, SEC1, encrypted ones).
    /// Missing: the test is skipped with a reason, or fails under CI=true.
    fn have_openssl() -> bool {
        let found = Command::new("openssl")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        crate::skip::have("the openssl command", found)
    }

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn tmp(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("cr-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        Dir(d)
    }

    impl Dir {
        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        /// `openssl ARGS` in the directory, killed after 60 s.
        fn openssl(&self, args: &[&str]) {
            let mut child = Command::new("openssl")
                .args(args)
                .current_dir(&self.0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let start = Instant::now();
            let status = loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break s;
                }
                if start.elapsed() > Duration::from_secs(60) {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("openssl {args:?}: still running after 60 s");
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            assert!(status.success(), "openssl {args:?}: {status}: {err}");
        }

        /// A new private key `name` (PKCS#8, as `openssl genpkey` writes it).
        fn key(&self, name: &str, alg: &str) {
            let mut args = vec!["genpkey", "-out", name];
            match alg {
                "rsa" => args.extend(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                "p256" | "p384" | "p521" => {
                    let curve = format!("ec_paramgen_curve:P-{}", &alg[1..]);
                    args.extend(["-algorithm", "EC", "-pkeyopt"]);
                    args.push(Box::leak(curve.into_boxed_str()));
                }
                other => args.extend(["-algorithm", other]),
            }
            self.openssl(&args);
        }

        /// A self-signed certificate `name` for key `key`, valid 30 days
        /// from now.
        fn cert(&self, key: &str, name: &str) {
            self.openssl(&[
                "req",
                "-x509",
                "-key",
                key,
                "-out",
                name,
                "-days",
                "30",
                "-subj",
                "/O=Example/CN=courier-run test",
            ]);
        }

        fn read(&self, name: &str) -> Vec<u8> {
            std::fs::read(self.path(name)).unwrap()
        }

        /// `name` = the concatenation of `parts`, mode `mode`.
        fn cat(&self, name: &str, parts: &[&str], mode: u32) -> PathBuf {
            let p = self.path(name);
            let all: Vec<u8> = parts.iter().flat_map(|f| self.read(f)).collect();
            std::fs::write(&p, all).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        }

        /// The certificate in `name` as the probes read it.
        fn parsed(&self, name: &str) -> Cert {
            first_certificate(&self.read(name)).expect("a certificate")
        }
    }

    const ROOT: Reader = Reader {
        uid: 0,
        gid: 0,
        groups: vec![],
    };

    fn levels(f: &[Finding]) -> Vec<Level> {
        f.iter().map(|f| f.level).collect()
    }

    fn worst(f: &[Finding]) -> &Finding {
        f.iter().max_by_key(|f| f.level).unwrap()
    }

    /// check_certfile on `cert` + `key` concatenated, a day into the
    /// certificate's validity; the finding about the key.
    fn key_finding(d: &Dir, cert: &str, key: &str) -> Finding {
        let p = d.cat("both.pem", &[cert, key], 0o600);
        let now = d.parsed(cert).not_before.unwrap().unix + DAY;
        let f = check_certfile(&p, None, &ROOT, now);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[1].level, Level::Ok, "{f:?}");
        f[0].clone()
    }

    fn assert_belongs(d: &Dir, cert: &str, key: &str) {
        let f = key_finding(d, cert, key);
        assert_eq!(f.level, Level::Ok, "{cert} + {key}: {f:?}");
        assert!(f.message.contains("belongs to the certificate"), "{f:?}");
    }

    fn assert_mismatch(d: &Dir, cert: &str, key: &str) {
        let f = key_finding(d, cert, key);
        assert_eq!(f.level, Level::Fail, "{cert} + {key}: {f:?}");
        assert!(f.message.contains("does not belong"), "{f:?}");
        assert!(f.fix.contains("the key it was made for"), "{f:?}");
    }

    fn assert_unknown(d: &Dir, cert: &str, key: &str) {
        let f = key_finding(d, cert, key);
        assert_eq!(f.level, Level::Warn, "{cert} + {key}: {f:?}");
        assert!(f.message.contains("without its public key"), "{f:?}");
        assert!(f.fix.contains("-pubout"), "{f:?}");
    }

    fn assert_no_key(d: &Dir, cert: &str, key: &str) {
        let f = key_finding(d, cert, key);
        assert_eq!(f.level, Level::Fail, "{cert} + {key}: {f:?}");
        assert!(f.message.contains("no unencrypted private key"), "{f:?}");
    }

    /// First line of a PEM file: which format openssl wrote.
    fn label(d: &Dir, name: &str) -> String {
        String::from_utf8(d.read(name))
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string()
    }

    #[test]
    fn rsa_pkcs1_and_pkcs8() {
        if !have_openssl() {
            return;
        }
        let d = tmp("rsa");
        d.key("a.key", "rsa");
        d.key("b.key", "rsa");
        d.cert("a.key", "a.crt");
        d.openssl(&["pkey", "-in", "a.key", "-traditional", "-out", "a1.key"]);
        d.openssl(&["pkey", "-in", "b.key", "-traditional", "-out", "b1.key"]);
        assert_eq!(label(&d, "a.key"), "-----BEGIN PRIVATE KEY-----");
        assert_eq!(label(&d, "a1.key"), "-----BEGIN RSA PRIVATE KEY-----");
        assert_belongs(&d, "a.crt", "a.key");
        assert_belongs(&d, "a.crt", "a1.key");
        assert_mismatch(&d, "a.crt", "b.key");
        assert_mismatch(&d, "a.crt", "b1.key");
    }

    #[test]
    fn ec_sec1_pkcs8_and_curves() {
        if !have_openssl() {
            return;
        }
        let d = tmp("ec");
        for alg in ["p256", "p384", "p521"] {
            let (a, b, c) = (
                format!("{alg}a.key"),
                format!("{alg}b.key"),
                format!("{alg}.crt"),
            );
            d.key(&a, alg);
            d.key(&b, alg);
            d.cert(&a, &c);
            assert_belongs(&d, &c, &a);
            assert_mismatch(&d, &c, &b);
        }
        // P-256 in SEC1 (EC PRIVATE KEY), with and without its public key
        // (which cannot be compared without curve arithmetic: a warning),
        // and with the point compressed.
        d.openssl(&[
            "pkey",
            "-in",
            "p256a.key",
            "-traditional",
            "-out",
            "sec1.key",
        ]);
        d.openssl(&[
            "pkey",
            "-in",
            "p256b.key",
            "-traditional",
            "-out",
            "sec1b.key",
        ]);
        d.openssl(&["ec", "-in", "p256a.key", "-no_public", "-out", "nopub.key"]);
        d.openssl(&["ec", "-in", "p256b.key", "-no_public", "-out", "nopubb.key"]);
        d.openssl(&[
            "ec",
            "-in",
            "p256a.key",
            "-conv_form",
            "compressed",
            "-out",
            "comp.key",
        ]);
        assert_eq!(label(&d, "sec1.key"), "-----BEGIN EC PRIVATE KEY-----");
        assert_eq!(label(&d, "nopub.key"), "-----BEGIN EC PRIVATE KEY-----");
        let der = |n: &str| {
            let (_, body, _) = pem_blocks(&d.read(n)).remove(0);
            base64(&body).unwrap()
        };
        assert!(
            sec1::EcPrivateKey::from_der(&der("sec1.key"))
                .unwrap()
                .public_key
                .is_some()
        );
        assert!(
            sec1::EcPrivateKey::from_der(&der("nopub.key"))
                .unwrap()
                .public_key
                .is_none()
        );
        assert_eq!(
            sec1::EcPrivateKey::from_der(&der("comp.key"))
                .unwrap()
                .public_key
                .unwrap()
                .len(),
            33
        );
        assert_belongs(&d, "p256.crt", "sec1.key");
        assert_mismatch(&d, "p256.crt", "sec1b.key");
        assert_unknown(&d, "p256.crt", "nopub.key");
        assert_unknown(&d, "p256.crt", "nopubb.key");
        assert_mismatch(&d, "p384.crt", "nopub.key");
        assert_belongs(&d, "p256.crt", "comp.key");
        // PKCS#8 without the public key: a warning as well.
        for k in ["nopub", "nopubb"] {
            d.openssl(&[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                &format!("{k}.key"),
                "-out",
                &format!("{k}8.key"),
            ]);
        }
        assert_eq!(label(&d, "nopub8.key"), "-----BEGIN PRIVATE KEY-----");
        assert_unknown(&d, "p256.crt", "nopub8.key");
        assert_unknown(&d, "p256.crt", "nopubb8.key");
        // Same algorithm, another curve; another algorithm.
        assert_mismatch(&d, "p384.crt", "p256a.key");
        d.key("rsa.key", "rsa");
        assert_mismatch(&d, "p256.crt", "rsa.key");
    }

    /// Point encodings compared without arithmetic: X byte for byte, Y
    /// whole or by parity.
    #[test]
    fn same_point_table() {
        let (x, y_even, y_odd) = (&[1u8, 2][..], &[9u8, 4][..], &[9u8, 5][..]);
        let enc = |tag: u8, y: Option<&[u8]>| {
            let mut v = vec![tag];
            v.extend_from_slice(x);
            v.extend_from_slice(y.unwrap_or(&[]));
            v
        };
        let full_even = enc(4, Some(y_even));
        let full_odd = enc(4, Some(y_odd));
        let (comp_even, comp_odd) = (enc(2, None), enc(3, None));
        assert!(same_point(&full_even, &full_even));
        assert!(!same_point(&full_even, &full_odd));
        assert!(same_point(&full_even, &comp_even));
        assert!(same_point(&comp_odd, &full_odd));
        assert!(!same_point(&comp_even, &full_odd));
        assert!(!same_point(&comp_even, &comp_odd));
        assert!(same_point(&enc(6, Some(y_even)), &comp_even));
        assert!(!same_point(&enc(7, Some(y_even)), &comp_even)); // parity lies
        assert!(!same_point(&full_even, &[4, 1, 3, 9, 4])); // another X
        assert!(!same_point(&[], &comp_even));
        assert!(!same_point(&[4, 1, 2, 3], &[4, 1, 2, 3])); // odd length
    }

    #[test]
    fn ed25519_seed_only() {
        if !have_openssl() {
            return;
        }
        let d = tmp("ed");
        d.key("a.key", "ed25519");
        d.key("b.key", "ed25519");
        d.cert("a.key", "a.crt");
        // OpenSSL writes the seed alone (PKCS#8 v1): no public key to
        // compare without curve arithmetic, so a warning either way.
        assert_unknown(&d, "a.crt", "a.key");
        assert_unknown(&d, "a.crt", "b.key");
        d.key("p.key", "p256");
        assert_mismatch(&d, "a.crt", "p.key");
        d.cert("p.key", "p.crt");
        assert_mismatch(&d, "p.crt", "a.key");
    }

    #[test]
    fn encrypted_or_missing_key_fails() {
        if !have_openssl() {
            return;
        }
        let d = tmp("enc");
        d.key("a.key", "p256");
        d.cert("a.key", "a.crt");
        d.openssl(&[
            "pkey", "-in", "a.key", "-aes128", "-passout", "pass:x", "-out", "e8.key",
        ]);
        d.openssl(&[
            "pkey",
            "-in",
            "a.key",
            "-traditional",
            "-aes128",
            "-passout",
            "pass:x",
            "-out",
            "e1.key",
        ]);
        assert_eq!(label(&d, "e8.key"), "-----BEGIN ENCRYPTED PRIVATE KEY-----");
        assert_no_key(&d, "a.crt", "e8.key");
        assert_no_key(&d, "a.crt", "e1.key");
        // The first key decides, as with OpenSSL.
        let p = d.cat("k.pem", &["e8.key", "a.key"], 0o600);
        let f = check_certfile(&d.cat("c.pem", &["a.crt"], 0o600), Some(&p), &ROOT, now());
        assert!(f[0].message.contains("no unencrypted private key"), "{f:?}");
        // No key at all; a certificate only.
        let f = check_certfile(&d.path("c.pem"), None, &ROOT, now());
        assert_eq!(f[0].level, Level::Fail, "{f:?}");
        assert!(f[0].message.contains("no unencrypted private key"), "{f:?}");
        assert!(f[0].fix.contains("cat cert.pem key.pem"), "{f:?}");
        // The key in TLS_PRIVATE_KEYFILE instead.
        let f = check_certfile(&d.path("c.pem"), Some(&d.path("a.key")), &ROOT, now());
        assert_eq!(levels(&f), [Level::Ok, Level::Ok], "{f:?}");
        // A key that is not one: a FAIL, not a panic.
        std::fs::write(
            d.path("bad.key"),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert_no_key(&d, "a.crt", "bad.key");
    }

    /// An unreadable TLS_PRIVATE_KEYFILE is the last word: one FAIL that
    /// names it, and no judgement of a key or of dates that were not read.
    #[test]
    fn unreadable_keyfile_ends_the_checks() {
        let cert = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/server.pem");
        let key = Path::new("/nonexistent/courier-run-test.key");
        let f = check_certfile(&cert, Some(key), &ROOT, now());
        assert_eq!(levels(&f), [Level::Fail], "{f:?}");
        assert!(
            f[0].message.starts_with(
                "TLS_PRIVATE_KEYFILE /nonexistent/courier-run-test.key: unable to read"
            ),
            "{f:?}"
        );
        // The same certificate with its own key: the key and the dates.
        let f = check_certfile(&cert, None, &ROOT, now());
        assert!(
            f.iter()
                .any(|f| f.message.contains("the private key belongs")),
            "{f:?}"
        );
        assert!(f.last().unwrap().message.contains("is valid for"), "{f:?}");
    }

    #[test]
    fn other_algorithms_warn() {
        if !have_openssl() {
            return;
        }
        let d = tmp("ed448");
        d.key("a.key", "ed448");
        d.cert("a.key", "a.crt");
        let f = key_finding(&d, "a.crt", "a.key");
        assert_eq!(f.level, Level::Warn, "{f:?}");
        assert!(f.message.contains("cannot tell"), "{f:?}");
        assert!(f.fix.contains("-pubout"), "{f:?}");
    }

    #[test]
    fn good_certificate_passes() {
        if !have_openssl() {
            return;
        }
        let d = tmp("good");
        d.key("a.key", "p256");
        d.openssl(&[
            "req",
            "-x509",
            "-key",
            "a.key",
            "-out",
            "a.crt",
            "-days",
            "90",
            "-subj",
            "/O=Example/CN=courier-run test",
        ]);
        let p = d.cat("imapd.pem", &["a.crt", "a.key"], 0o600);
        let n = d.parsed("a.crt").not_before.unwrap().unix;
        let f = check_certfile(&p, None, &ROOT, n);
        assert_eq!(levels(&f), [Level::Ok, Level::Ok], "{f:?}");
        assert!(
            f[1].message
                .contains("(Example, courier-run test) is valid for 90 more days"),
            "{f:?}"
        );
    }

    #[test]
    fn missing_file_fails_with_fix() {
        let d = tmp("missing");
        let f = check_certfile(&d.0.join("nope.pem"), None, &ROOT, now());
        assert_eq!(levels(&f), [Level::Fail]);
        assert!(f[0].message.contains("does not exist"));
        assert!(f[0].fix.contains("mkimapdcert"));
    }

    #[test]
    fn not_a_certificate_fails() {
        let d = tmp("notcert");
        let p = d.path("c.pem");
        for text in [
            "not a certificate\n",
            "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n",
        ] {
            std::fs::write(&p, text).unwrap();
            let f = check_certfile(&p, None, &ROOT, now());
            assert_eq!(levels(&f), [Level::Fail], "{text}: {f:?}");
            assert!(f[0].message.contains("no PEM certificate"), "{f:?}");
        }
    }

    /// Expiry, with `now` moved through a 30-day certificate's life.
    #[test]
    fn expired_expiring_and_not_yet_valid() {
        if !have_openssl() {
            return;
        }
        let d = tmp("expiry");
        d.key("a.key", "p256");
        d.cert("a.key", "a.crt");
        let p = d.cat("c.pem", &["a.crt", "a.key"], 0o600);
        let c = d.parsed("a.crt");
        let (from, until) = (c.not_before.unwrap(), c.not_after.unwrap());
        assert_eq!(until.unix - from.unix, 30 * DAY);

        let f = check_certfile(&p, None, &ROOT, until.unix + DAY);
        let w = worst(&f);
        assert_eq!(w.level, Level::Fail, "{f:?}");
        assert!(
            w.message.contains(&format!("expired on {}", until.text)),
            "{f:?}"
        );
        assert!(w.fix.contains("renew"));
        // The very second it ends.
        assert_eq!(
            worst(&check_certfile(&p, None, &ROOT, until.unix)).level,
            Level::Fail
        );

        let f = check_certfile(&p, None, &ROOT, until.unix - 3 * DAY - 5);
        let w = worst(&f);
        assert_eq!(w.level, Level::Warn, "{f:?}");
        assert!(
            w.message
                .contains(&format!("expires in 3 days, on {}", until.text)),
            "{f:?}"
        );
        let f = check_certfile(
            &p,
            None,
            &ROOT,
            until.unix - i64::from(EXPIRY_WARN_DAYS) * DAY,
        );
        assert_eq!(worst(&f).level, Level::Ok, "{f:?}");
        assert!(f[1].message.contains("valid for 14 more days"), "{f:?}");

        let f = check_certfile(&p, None, &ROOT, from.unix - 5 * DAY);
        let w = worst(&f);
        assert_eq!(w.level, Level::Fail, "{f:?}");
        assert!(
            w.message
                .contains(&format!("not valid before {}", from.text)),
            "{f:?}"
        );
    }

    /// The dates print as OpenSSL prints them (`openssl x509 -enddate`).
    #[test]
    fn date_text_is_openssls() {
        if !have_openssl() {
            return;
        }
        let d = tmp("dates");
        d.key("a.key", "p256");
        d.cert("a.key", "a.crt");
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-startdate", "-enddate", "-in"])
            .arg(d.path("a.crt"))
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let c = d.parsed("a.crt");
        assert_eq!(
            text,
            format!(
                "notBefore={}\nnotAfter={}\n",
                c.not_before.unwrap().text,
                c.not_after.unwrap().text
            )
        );
    }

    fn time(tag: Tag, s: &str) -> Option<Time> {
        asn1_time(AnyRef::new(tag, s.as_bytes()).unwrap())
    }

    #[test]
    fn asn1_times() {
        let t = time(Tag::UtcTime, "271102120000Z").unwrap();
        assert_eq!(t.text, "Nov  2 12:00:00 2027 GMT");
        assert_eq!(t.unix, 1825156800); // date -u -d "2027-11-02 12:00:00" +%s
        // UTCTime years 50..99 are 19xx, before 1970 too.
        let t = time(Tag::UtcTime, "500101000000Z").unwrap();
        assert_eq!(
            (t.unix, t.text.as_str()),
            (-631152000, "Jan  1 00:00:00 1950 GMT")
        );
        let t = time(Tag::UtcTime, "491231235959Z").unwrap();
        assert_eq!(t.text, "Dec 31 23:59:59 2049 GMT");
        let t = time(Tag::GeneralizedTime, "99991231235959Z").unwrap();
        assert_eq!(t.text, "Dec 31 23:59:59 9999 GMT");
        assert_eq!(t.unix, 253402300799);
        let t = time(Tag::GeneralizedTime, "20240229120000.25Z").unwrap();
        assert_eq!(t.text, "Feb 29 12:00:00.25 2024 GMT");
        // An offset is turned into GMT.
        let t = time(Tag::UtcTime, "2701010100+0200").unwrap();
        assert_eq!(t.text, "Dec 31 23:00:00 2026 GMT");
        for bad in [
            "2702301200Z",
            "270101120000",
            "27010112000Z",
            "x70101120000Z",
            "271301120000Z",
        ] {
            assert_eq!(time(Tag::UtcTime, bad), None, "{bad}");
        }
        assert_eq!(time(Tag::Utf8String, "271102120000Z"), None);
    }

    #[test]
    fn world_readable_warns_and_unreadable_fails() {
        if !have_openssl() {
            return;
        }
        let d = tmp("perm");
        d.key("a.key", "p256");
        d.cert("a.key", "a.crt");
        let p = d.cat("c.pem", &["a.crt", "a.key"], 0o644);
        let n = d.parsed("a.crt").not_before.unwrap().unix + DAY;
        let f = check_certfile(&p, None, &ROOT, n);
        let w = worst(&f);
        assert_eq!(w.level, Level::Warn, "{f:?}");
        assert!(w.message.contains("readable by every user"));
        assert_eq!(w.fix, format!("chmod o-r {}", p.display()));

        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let owner = std::fs::metadata(&p).unwrap().uid();
        let stranger = Reader {
            uid: owner + 4242,
            gid: 4242,
            groups: vec![],
        };
        let f = check_certfile(&p, None, &stranger, n);
        let w = worst(&f);
        assert_eq!(w.level, Level::Fail, "{f:?}");
        assert!(w.message.contains("not readable by"), "{f:?}");
        // Group read lets a member in.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let gid = std::fs::metadata(&p).unwrap().gid();
        let member = Reader {
            uid: owner + 4242,
            gid: 4242,
            groups: vec![gid],
        };
        assert_eq!(can_read(&p, &member).unwrap(), Ok(()));
    }

    #[test]
    fn env_probes() {
        let d = tmp("env");
        let dh = d.0.join("dh.pem");
        std::fs::write(&dh, "x").unwrap();
        let dhs = dh.to_string_lossy().into_owned();
        let get = |n: &str| match n {
            "TLS_DHPARAMS" => Some(dhs.clone().into_bytes()),
            "TLS_TRUSTCERTS" => Some(b"/nonexistent/ca.crt".to_vec()),
            _ => None,
        };
        let f = check_env(get, &ROOT, now());
        assert_eq!(levels(&f), [Level::Fail, Level::Fail, Level::Ok], "{f:?}");
        assert!(f[0].message.contains("TLS_CERTFILE is not set"));
        assert!(f[1].message.contains("TLS_TRUSTCERTS"));
    }
}
