//! `--check`'s TLS probes: TLS_CERTFILE (and TLS_PRIVATE_KEYFILE when set),
//! TLS_TRUSTCERTS, TLS_DHPARAMS. Read-only; returns [`Finding`]s.
//!
//! Why: a missing or broken certificate lets the service start, and every
//! TLS client then fails with nothing in the log but "No supported cipher
//! suites have been found". The certificate and key are parsed with the
//! `openssl` crate (the system's libssl): one maintained library reads every
//! key type couriertls accepts (RSA, EC, Ed25519; PKCS#1, PKCS#8, SEC1) and
//! compares a key with a certificate's public key (`EVP_PKEY_eq`), where a
//! pure-Rust stack needs a parser crate plus one crate per key algorithm.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use openssl::asn1::Asn1Time;
use openssl::pkey::PKey;
use openssl::x509::X509;

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
    let pem = match std::fs::read(certfile) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            out.push(Finding::fail(
                format!("TLS_CERTFILE {name} does not exist: every TLS client fails (the log says only \"No supported cipher suites have been found\")"),
                make,
            ));
            return out;
        }
        Err(e) => {
            out.push(Finding::fail(
                format!("TLS_CERTFILE {name}: unable to read: {e}"),
                "make the file readable by root",
            ));
            return out;
        }
    };
    match can_read(certfile, who) {
        Ok(Ok(())) => {}
        Ok(Err(why)) => out.push(Finding::fail(
            format!(
                "TLS_CERTFILE {name} is not readable by {}: {why}",
                who_text(who)
            ),
            format!(
                "chown/chmod it so that uid {} can read it (and keep it unreadable by others)",
                who.uid
            ),
        )),
        Err(e) => out.push(Finding::fail(format!("TLS_CERTFILE {name}: {e}"), make)),
    }

    let cert = match X509::stack_from_pem(&pem) {
        Ok(v) if !v.is_empty() => v.into_iter().next().expect("not empty"),
        _ => {
            out.push(Finding::fail(
                format!(
                    "TLS_CERTFILE {name} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                ),
                make,
            ));
            return out;
        }
    };
    let (key_path, key_pem) = match keyfile {
        Some(k) => match std::fs::read(k) {
            Ok(b) => (k.display().to_string(), b),
            Err(e) => {
                out.push(Finding::fail(
                    format!("TLS_PRIVATE_KEYFILE {}: unable to read: {e}", k.display()),
                    "point TLS_PRIVATE_KEYFILE at the certificate's private key, or unset it and put the key in TLS_CERTFILE",
                ));
                return out;
            }
        },
        None => (name.to_string(), pem.clone()),
    };
    match PKey::private_key_from_pem(&key_pem) {
        Err(_) => out.push(Finding::fail(
            format!("{key_path} holds no unencrypted private key (-----BEGIN ... PRIVATE KEY-----)"),
            "append the certificate's private key, without a passphrase, to the file (cat cert.pem key.pem > TLS_CERTFILE)",
        )),
        Ok(key) => match cert.public_key() {
            Ok(public) if public.public_eq(&key) => {
                out.push(Finding::ok(format!("{key_path}: the private key belongs to the certificate")))
            }
            _ => out.push(Finding::fail(
                format!("{key_path}: the private key does not belong to the certificate in {name} (couriertls cannot start a TLS session)"),
                "put the certificate together with the key it was made for",
            )),
        },
    }
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

    let subject = cert
        .subject_name()
        .entries()
        .map(|e| String::from_utf8_lossy(e.data().as_slice()).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    let renew =
        "renew the certificate (for a self-signed one: mkimapdcert after moving the old file away)";
    let days_left = Asn1Time::from_unix(now)
        .ok()
        .and_then(|t| t.diff(cert.not_after()).ok());
    let not_yet = Asn1Time::from_unix(now)
        .ok()
        .and_then(|t| t.diff(cert.not_before()).ok())
        .is_some_and(|d| d.days > 0 || (d.days == 0 && d.secs > 0));
    match days_left {
        None => out.push(Finding::fail(
            format!("TLS_CERTFILE {name}: unreadable validity dates"),
            renew,
        )),
        Some(d) if d.days < 0 || (d.days == 0 && d.secs <= 0) => out.push(Finding::fail(
            format!(
                "the certificate in {name} ({subject}) expired on {}: clients refuse it",
                cert.not_after()
            ),
            renew,
        )),
        Some(d) if d.days < EXPIRY_WARN_DAYS as i32 => out.push(Finding::warn(
            format!(
                "the certificate in {name} ({subject}) expires in {} days, on {}",
                d.days,
                cert.not_after()
            ),
            renew,
        )),
        Some(_) if not_yet => out.push(Finding::fail(
            format!(
                "the certificate in {name} ({subject}) is not valid before {}",
                cert.not_before()
            ),
            "check the clock, or the certificate's dates",
        )),
        Some(d) => out.push(Finding::ok(format!(
            "the certificate in {name} ({subject}) is valid for {} more days",
            d.days
        ))),
    }
    out
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
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::Private;
    use openssl::x509::X509NameBuilder;

    const DAY: i64 = 86400;

    fn key() -> PKey<Private> {
        let g = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        PKey::from_ec_key(EcKey::generate(&g).unwrap()).unwrap()
    }

    /// A self-signed certificate for `key`, valid from..until (Unix times).
    fn cert(key: &PKey<Private>, from: i64, until: i64) -> X509 {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "courier-run test").unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(from).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::from_unix(until).unwrap())
            .unwrap();
        b.sign(key, MessageDigest::sha256()).unwrap();
        b.build()
    }

    struct Dir(std::path::PathBuf);
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

    fn write(path: &Path, parts: &[Vec<u8>], mode: u32) {
        std::fs::write(path, parts.concat()).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
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

    #[test]
    fn good_certificate_passes() {
        let d = tmp("good");
        let k = key();
        let n = now();
        let c = cert(&k, n - DAY, n + 90 * DAY);
        let p = d.0.join("imapd.pem");
        write(
            &p,
            &[c.to_pem().unwrap(), k.private_key_to_pem_pkcs8().unwrap()],
            0o600,
        );
        let f = check_certfile(&p, None, &ROOT, n);
        assert_eq!(levels(&f), [Level::Ok, Level::Ok], "{f:?}");
        assert!(f[1].message.contains("valid for 90 more days"), "{f:?}");
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
    fn expired_and_expiring() {
        let d = tmp("expiry");
        let k = key();
        let p = d.0.join("c.pem");
        let n = now();
        write(
            &p,
            &[
                cert(&k, n - 30 * DAY, n - DAY).to_pem().unwrap(),
                k.private_key_to_pem_pkcs8().unwrap(),
            ],
            0o600,
        );
        let f = check_certfile(&p, None, &ROOT, n);
        let w = worst(&f);
        assert_eq!(w.level, Level::Fail, "{f:?}");
        assert!(w.message.contains("expired"), "{f:?}");
        assert!(w.fix.contains("renew"));

        write(
            &p,
            &[
                cert(&k, n - 30 * DAY, n + 3 * DAY).to_pem().unwrap(),
                k.private_key_to_pem_pkcs8().unwrap(),
            ],
            0o600,
        );
        let f = check_certfile(&p, None, &ROOT, n);
        let w = worst(&f);
        assert_eq!(w.level, Level::Warn, "{f:?}");
        assert!(w.message.contains("expires in 3 days"), "{f:?}");

        write(
            &p,
            &[
                cert(&k, n + 5 * DAY, n + 90 * DAY).to_pem().unwrap(),
                k.private_key_to_pem_pkcs8().unwrap(),
            ],
            0o600,
        );
        let f = check_certfile(&p, None, &ROOT, n);
        assert!(worst(&f).message.contains("not valid before"), "{f:?}");
    }

    #[test]
    fn mismatched_or_missing_key_fails() {
        let d = tmp("key");
        let (k, other) = (key(), key());
        let n = now();
        let p = d.0.join("c.pem");
        write(
            &p,
            &[
                cert(&k, n - DAY, n + 90 * DAY).to_pem().unwrap(),
                other.private_key_to_pem_pkcs8().unwrap(),
            ],
            0o600,
        );
        let f = check_certfile(&p, None, &ROOT, n);
        let w = worst(&f);
        assert_eq!(w.level, Level::Fail);
        assert!(w.message.contains("does not belong"), "{f:?}");

        write(
            &p,
            &[cert(&k, n - DAY, n + 90 * DAY).to_pem().unwrap()],
            0o600,
        );
        let f = check_certfile(&p, None, &ROOT, n);
        assert!(
            worst(&f).message.contains("no unencrypted private key"),
            "{f:?}"
        );

        // The key in TLS_PRIVATE_KEYFILE instead.
        let kp = d.0.join("k.pem");
        write(&kp, &[k.private_key_to_pem_pkcs8().unwrap()], 0o600);
        let f = check_certfile(&p, Some(&kp), &ROOT, n);
        assert_eq!(worst(&f).level, Level::Ok, "{f:?}");

        write(&p, &[b"not a certificate\n".to_vec()], 0o600);
        let f = check_certfile(&p, None, &ROOT, n);
        assert!(worst(&f).message.contains("no PEM certificate"), "{f:?}");
    }

    #[test]
    fn world_readable_warns_and_unreadable_fails() {
        let d = tmp("perm");
        let k = key();
        let n = now();
        let p = d.0.join("c.pem");
        write(
            &p,
            &[
                cert(&k, n - DAY, n + 90 * DAY).to_pem().unwrap(),
                k.private_key_to_pem_pkcs8().unwrap(),
            ],
            0o644,
        );
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
