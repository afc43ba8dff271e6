//! The four Courier services as Courier's own rc scripts start them, as data.
//!
//! Each rc script (`imapd.rc`, `imapd-ssl.rc`, `pop3d.rc`, `pop3d-ssl.rc`)
//! sources two config files in an *outer* shell, then runs
//!
//! ```sh
//! env -i /bin/sh -c " set -a ; prefix=... ; . base ; . ssl ;
//!     IMAP_STARTTLS=$IMAPDSTARTTLS ; ... ; couriertcpd ... $PORT login server ${MAILDIRPATH}"
//! ```
//!
//! The inner script is in double quotes, so every `$NAME` in it is expanded
//! by the OUTER shell (which sourced the files in its own order) before the
//! inner shell parses the text: `IMAP_STARTTLS=$IMAPDSTARTTLS` assigns the
//! outer value, as text. [`RcValue::Outer`] records exactly that. `set -a`
//! exports everything the inner shell assigns, the predefined `prefix=...`
//! words included. `resolve` computes the launch's environment from these
//! tables and the config files (the one model of the rc); the oracle test
//! (`tests/rc_oracle.rs`) checks the plan's environment against the real rc
//! scripts run by dash.
//!
//! Sources: Debian 12's `/usr/sbin/{imapd,imapd-ssl,pop3d,pop3d-ssl}` (copies
//! in `tests/fixtures/debian12/*.rc`) for `layout=debian`; Courier's
//! `courier-imap/*.rc.in` for `layout=courier2` (programs under the prefix).

use std::fmt;
use std::path::PathBuf;

use crate::config::Scope;

/// Where Courier is installed: the defaults of every setting, the config
/// files and the programs follow from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The 2004 recipe: Courier-IMAP 2.x under /usr/local/courier-imap.
    Courier2,
    /// Courier 5 as packaged by Debian 12.
    Debian,
}

impl Layout {
    /// Both layouts; the first is `init`'s default (Courier 5 as Debian
    /// ships it is what a new install has).
    pub const ALL: [Layout; 2] = [Layout::Debian, Layout::Courier2];

    /// The name the `layout` setting takes.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Courier2 => "courier2",
            Layout::Debian => "debian",
        }
    }

    /// The value of the `layout` setting, or None.
    pub fn parse(s: &str) -> Option<Layout> {
        Layout::ALL.into_iter().find(|l| l.name() == s)
    }

    /// Where the layout installs Courier: the `prefix` setting's default.
    pub fn default_prefix(self) -> &'static str {
        match self {
            Layout::Courier2 => "/usr/local/courier-imap",
            Layout::Debian => "/usr",
        }
    }

    /// The account Courier's programs run as: envuidgid's (the `account`
    /// setting's default) and the one `init` gives the log to.
    pub fn account(self) -> &'static str {
        match self {
            Layout::Courier2 => "courierd",
            Layout::Debian => "courier",
        }
    }
}

/// One of the four services of Courier-IMAP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    Imapd,
    ImapdSsl,
    Pop3d,
    Pop3dSsl,
}

/// What the `service` setting (and `init --service`) names: one of the
/// four mail services, or courier-authlib's authdaemond, which has no
/// front end and none of the rc facts above. The one list of the names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    Imapd,
    ImapdSsl,
    Pop3d,
    Pop3dSsl,
    Authdaemond,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 5] = [
        ServiceKind::Imapd,
        ServiceKind::ImapdSsl,
        ServiceKind::Pop3d,
        ServiceKind::Pop3dSsl,
        ServiceKind::Authdaemond,
    ];

    /// The setting's word: the rc script's name, and for authdaemond the
    /// program's.
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Imapd => "imapd",
            ServiceKind::ImapdSsl => "imapd-ssl",
            ServiceKind::Pop3d => "pop3d",
            ServiceKind::Pop3dSsl => "pop3d-ssl",
            ServiceKind::Authdaemond => "authdaemond",
        }
    }

    /// The value of the `service` setting, or None.
    pub fn parse(s: &str) -> Option<ServiceKind> {
        ServiceKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The mail service, or None for authdaemond.
    pub fn mail(self) -> Option<Service> {
        match self {
            ServiceKind::Imapd => Some(Service::Imapd),
            ServiceKind::ImapdSsl => Some(Service::ImapdSsl),
            ServiceKind::Pop3d => Some(Service::Pop3d),
            ServiceKind::Pop3dSsl => Some(Service::Pop3dSsl),
            ServiceKind::Authdaemond => None,
        }
    }

    /// Every name, as an error's fix lists them ("a, b or c").
    pub fn choices() -> String {
        let names: Vec<&str> = ServiceKind::ALL.iter().map(|k| k.name()).collect();
        let (last, rest) = names.split_last().expect("not empty");
        format!("{} or {last}", rest.join(", "))
    }
}

impl From<Service> for ServiceKind {
    fn from(s: Service) -> ServiceKind {
        match s {
            Service::Imapd => ServiceKind::Imapd,
            Service::ImapdSsl => ServiceKind::ImapdSsl,
            Service::Pop3d => ServiceKind::Pop3d,
            Service::Pop3dSsl => ServiceKind::Pop3dSsl,
        }
    }
}

/// The protocol a service speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Pop3,
}

/// The value of one of the rc script's own assignments after the config files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcValue {
    /// A literal word (`IMAP_TLS=1`).
    Literal(&'static str),
    /// `$NAME` inside the double-quoted inner script: the outer shell's
    /// value of NAME (empty when unset), pasted in as text.
    Outer(&'static str),
}

/// What the rc does with `TLS_CACHEFILE` at each start (when it is set):
/// `rm -f; touch; chown OWNER; chgrp GROUP; chmod 600`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheReset {
    pub path: PathBuf,
    pub owner: String,
    pub group: String,
    pub mode: u32,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Imapd,
        Service::ImapdSsl,
        Service::Pop3d,
        Service::Pop3dSsl,
    ];

    /// The value of the `service` setting, or None (authdaemond too: it
    /// is no mail service).
    pub fn parse(s: &str) -> Option<Service> {
        ServiceKind::parse(s)?.mail()
    }

    /// The setting's word, also the name of the rc script and of its config
    /// file (`/etc/courier/imapd-ssl`).
    pub fn name(self) -> &'static str {
        ServiceKind::from(self).name()
    }

    pub fn protocol(self) -> Protocol {
        match self {
            Service::Imapd | Service::ImapdSsl => Protocol::Imap,
            Service::Pop3d | Service::Pop3dSsl => Protocol::Pop3,
        }
    }

    /// Implicit TLS: couriertls wraps the login program.
    pub fn is_ssl(self) -> bool {
        matches!(self, Service::ImapdSsl | Service::Pop3dSsl)
    }

    /// The plain service of the same protocol (its config file is the base).
    fn base(self) -> &'static str {
        match self.protocol() {
            Protocol::Imap => "imapd",
            Protocol::Pop3 => "pop3d",
        }
    }

    /// The -ssl companion config (sourced by every rc script of the protocol).
    fn ssl(self) -> &'static str {
        match self.protocol() {
            Protocol::Imap => "imapd-ssl",
            Protocol::Pop3 => "pop3d-ssl",
        }
    }

    /// The banner's name: `*** Starting NAME service...` (imapd keeps the
    /// classic recipe's words).
    pub fn banner_name(self) -> &'static str {
        match self {
            Service::Imapd => "courier-imap",
            Service::ImapdSsl => "courier-imap-ssl",
            Service::Pop3d => "courier-pop3",
            Service::Pop3dSsl => "courier-pop3-ssl",
        }
    }

    /// The server program's short name, for messages ("imapd's environment").
    pub fn server_name(self) -> &'static str {
        self.base()
    }

    /// The variable that says whether Courier's scripts start this service.
    pub fn start_var(self) -> &'static str {
        match self {
            Service::Imapd => "IMAPDSTART",
            Service::ImapdSsl => "IMAPDSSLSTART",
            Service::Pop3d => "POP3DSTART",
            Service::Pop3dSsl => "POP3DSSLSTART",
        }
    }

    /// The config variables of the front end's address and port.
    pub fn address_var(self) -> &'static str {
        if self.is_ssl() {
            "SSLADDRESS"
        } else {
            "ADDRESS"
        }
    }

    pub fn port_var(self) -> &'static str {
        if self.is_ssl() { "SSLPORT" } else { "PORT" }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Service::Imapd => 143,
            Service::ImapdSsl => 993,
            Service::Pop3d => 110,
            Service::Pop3dSsl => 995,
        }
    }

    /// The variable the server reads to offer STARTTLS, and the one that
    /// makes it refuse a login before STARTTLS.
    pub fn starttls_var(self) -> &'static str {
        match self.protocol() {
            Protocol::Imap => "IMAP_STARTTLS",
            Protocol::Pop3 => "POP3_STARTTLS",
        }
    }

    pub fn tls_required_var(self) -> &'static str {
        match self.protocol() {
            Protocol::Imap => "IMAP_TLS_REQUIRED",
            Protocol::Pop3 => "POP3_TLS_REQUIRED",
        }
    }

    /// Courier's imapd rc scripts apply `umask $IMAP_UMASK` and `ulimit -v
    /// $IMAP_ULIMITD`; the pop3d ones apply neither.
    pub fn umask_var(self) -> Option<&'static str> {
        (self.protocol() == Protocol::Imap).then_some("IMAP_UMASK")
    }

    pub fn ulimit_var(self) -> Option<&'static str> {
        (self.protocol() == Protocol::Imap).then_some("IMAP_ULIMITD")
    }

    /// Where the layout keeps the config files.
    pub fn config_dir(layout: Layout, prefix: &str) -> String {
        match layout {
            Layout::Courier2 => format!("{prefix}/etc"),
            Layout::Debian => "/etc/courier".to_string(),
        }
    }

    /// The config files' names in the order the INNER shell sources them
    /// (this decides the final environment).
    pub fn inner_order(self, layout: Layout) -> [&'static str; 2] {
        let (b, s) = (self.base(), self.ssl());
        match (layout, self) {
            // Debian's four scripts all source base then -ssl inside.
            (Layout::Debian, _) => [b, s],
            // Upstream: the plain services source -ssl first, then base.
            (Layout::Courier2, Service::Imapd | Service::Pop3d) => [s, b],
            (Layout::Courier2, _) => [b, s],
        }
    }

    /// The order the OUTER shell sources them (this decides the values of
    /// the `$NAME`s pasted into the inner script, and TLS_CACHEFILE).
    pub fn outer_order(self) -> [&'static str; 2] {
        let (b, s) = (self.base(), self.ssl());
        if self.is_ssl() { [b, s] } else { [s, b] }
    }

    /// The config files in the inner order: the `config` setting's default.
    pub fn config_files(self, layout: Layout, prefix: &str) -> Vec<String> {
        let dir = Service::config_dir(layout, prefix);
        self.inner_order(layout)
            .iter()
            .map(|n| format!("{dir}/{n}"))
            .collect()
    }

    /// The words the inner script assigns before sourcing (exported by
    /// `set -a`), in order.
    pub fn predefined(self, layout: Layout, prefix: &str) -> Vec<(&'static str, String)> {
        match layout {
            Layout::Debian => {
                let mut v = vec![
                    ("prefix", "/usr".to_string()),
                    ("exec_prefix", "/usr".to_string()),
                    ("sbindir", "/usr/sbin".to_string()),
                    ("bindir", "/usr/bin".to_string()),
                ];
                if self.protocol() == Protocol::Pop3 {
                    v.push(("libexecdir", "/usr/lib/courier".to_string()));
                }
                v
            }
            Layout::Courier2 => vec![
                ("prefix", prefix.to_string()),
                ("exec_prefix", prefix.to_string()),
                ("bindir", format!("{prefix}/bin")),
                ("libexecdir", format!("{prefix}/libexec")),
            ],
        }
    }

    /// The outer shell's variables before it sources the files (visible to
    /// references in the config files only).
    pub fn outer_predefined(self, layout: Layout, prefix: &str) -> Vec<(&'static str, String)> {
        let mut v = self.predefined(layout, prefix);
        v.push(("sysconfdir", Service::config_dir(layout, prefix)));
        v
    }

    /// The rc script's own assignments after the config files, in order.
    pub fn rc_assignments(self, layout: Layout) -> &'static [(&'static str, RcValue)] {
        use RcValue::*;
        const PROXY: (&str, RcValue) = ("PROXY_HOSTNAME", Outer("PROXY_HOSTNAME"));
        const STARTTLS: (&str, RcValue) = ("IMAP_STARTTLS", Outer("IMAPDSTARTTLS"));
        const PROTOCOL: (&str, RcValue) = ("TLS_PROTOCOL", Outer("TLS_STARTTLS_PROTOCOL"));
        const POP3S: [(&str, RcValue); 4] = [
            PROXY,
            ("POP3_TLS", Literal("1")),
            ("POP3_STARTTLS", Literal("NO")),
            ("POP3_TLS_REQUIRED", Literal("0")),
        ];
        match (layout, self) {
            (Layout::Debian, Service::Imapd) => &[STARTTLS, PROXY],
            (Layout::Courier2, Service::Imapd) => &[STARTTLS, PROXY, PROTOCOL],
            (_, Service::ImapdSsl) => &[PROXY, ("IMAP_TLS", Literal("1"))],
            (Layout::Debian, Service::Pop3d) => &[PROXY],
            (Layout::Courier2, Service::Pop3d) => &[PROXY, PROTOCOL],
            (_, Service::Pop3dSsl) => &POP3S,
        }
    }

    /// The login program.
    pub fn login(self, layout: Layout, prefix: &str) -> String {
        match (layout, self.protocol()) {
            (Layout::Debian, Protocol::Imap) => "/usr/lib/courier/courier/imaplogin".into(),
            (Layout::Debian, Protocol::Pop3) => "/usr/lib/courier/courier/courierpop3login".into(),
            (Layout::Courier2, Protocol::Imap) => format!("{prefix}/sbin/imaplogin"),
            (Layout::Courier2, Protocol::Pop3) => format!("{prefix}/sbin/pop3login"),
        }
    }

    /// The server program (the `imapd` setting).
    pub fn server(self, layout: Layout, prefix: &str) -> String {
        match (layout, self.protocol()) {
            (Layout::Debian, Protocol::Imap) => "/usr/bin/imapd".into(),
            (Layout::Debian, Protocol::Pop3) => "/usr/lib/courier/courier/courierpop3d".into(),
            (Layout::Courier2, Protocol::Imap) => format!("{prefix}/bin/imapd"),
            (Layout::Courier2, Protocol::Pop3) => format!("{prefix}/bin/pop3d"),
        }
    }

    /// couriertls when the config does not set COURIERTLS.
    pub fn default_couriertls(layout: Layout, prefix: &str) -> String {
        match layout {
            Layout::Debian => "/usr/bin/couriertls".into(),
            Layout::Courier2 => format!("{prefix}/bin/couriertls"),
        }
    }

    /// The words between the front end's port and the login program:
    /// `$COURIERTLS -server -tcpd -user=ACCOUNT` for the -ssl services,
    /// nothing otherwise. `account` empty: no `-user=` (couriertls stays
    /// the user the front end runs the chain as).
    pub fn tls_wrapper(self, couriertls: &str, account: &str) -> Vec<String> {
        if !self.is_ssl() {
            return vec![];
        }
        let mut v = vec![couriertls.to_string(), "-server".into(), "-tcpd".into()];
        if !account.is_empty() {
            v.push(format!("-user={account}"));
        }
        v
    }

    /// The rc's TLS_CACHEFILE reset, from the outer shell's value (every
    /// rc script does it, when the value is not empty).
    pub fn cache_reset(outer_value: Option<&[u8]>, owner: &str, group: &str) -> Option<CacheReset> {
        let v = outer_value.filter(|v| !v.is_empty())?;
        Some(CacheReset {
            path: PathBuf::from(String::from_utf8_lossy(v).into_owned()),
            owner: owner.to_string(),
            group: group.to_string(),
            mode: 0o600,
        })
    }
}

impl Service {
    /// The configured files in the order the rc's OUTER shell would source
    /// them: when they are this service's two files (by name) in the inner
    /// order, the outer order; any other list as given.
    pub fn outer_files(self, layout: Layout, configs: &[PathBuf]) -> Vec<PathBuf> {
        let names: Vec<&str> = configs
            .iter()
            .filter_map(|p| p.file_name()?.to_str())
            .collect();
        let inner = self.inner_order(layout);
        if names == inner && self.outer_order() != inner {
            configs.iter().rev().cloned().collect()
        } else {
            configs.to_vec()
        }
    }

    /// The rc's assignments after the config files, with their values:
    /// literal, or the outer shell's (`outer`: a scope that read
    /// [`Service::outer_files`]), empty when unset.
    pub fn rc_values(self, layout: Layout, outer: &Scope) -> Vec<(&'static str, Vec<u8>)> {
        self.rc_assignments(layout)
            .iter()
            .map(|(n, v)| {
                let v = match v {
                    RcValue::Literal(s) => s.as_bytes().to_vec(),
                    RcValue::Outer(from) => outer.get(from).unwrap_or_default().to_vec(),
                };
                (*n, v)
            })
            .collect()
    }
}

/// A value the inner shell reads back unchanged when pasted after `NAME=`.
pub fn plain_word(v: &[u8]) -> bool {
    v.iter()
        .all(|&c| c.is_ascii_alphanumeric() || b"_.,:/@%+=-".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Layout::*;

    #[test]
    fn names_round_trip() {
        for s in Service::ALL {
            assert_eq!(Service::parse(s.name()), Some(s));
        }
        assert_eq!(Service::parse("imap"), None);
        assert_eq!(Service::parse("authdaemond"), None);
        assert_eq!(Service::Pop3dSsl.to_string(), "pop3d-ssl");
        for k in ServiceKind::ALL {
            assert_eq!(ServiceKind::parse(k.name()), Some(k));
            assert_eq!(k.mail().map(ServiceKind::from), k.mail().map(|_| k));
        }
        assert_eq!(
            ServiceKind::choices(),
            "imapd, imapd-ssl, pop3d, pop3d-ssl or authdaemond"
        );
        for l in Layout::ALL {
            assert_eq!(Layout::parse(l.name()), Some(l));
        }
        assert_eq!(Layout::parse("Debian"), None);
    }

    #[test]
    fn ports_addresses_start_vars() {
        let got: Vec<_> = Service::ALL
            .iter()
            .map(|s| {
                (
                    s.default_port(),
                    s.port_var(),
                    s.address_var(),
                    s.start_var(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (143, "PORT", "ADDRESS", "IMAPDSTART"),
                (993, "SSLPORT", "SSLADDRESS", "IMAPDSSLSTART"),
                (110, "PORT", "ADDRESS", "POP3DSTART"),
                (995, "SSLPORT", "SSLADDRESS", "POP3DSSLSTART"),
            ]
        );
    }

    #[test]
    fn programs_per_layout() {
        let p = "/opt/ci";
        assert_eq!(
            Service::Pop3dSsl.login(Debian, p),
            "/usr/lib/courier/courier/courierpop3login"
        );
        assert_eq!(
            Service::Pop3d.server(Debian, p),
            "/usr/lib/courier/courier/courierpop3d"
        );
        assert_eq!(
            Service::ImapdSsl.login(Debian, p),
            "/usr/lib/courier/courier/imaplogin"
        );
        assert_eq!(Service::Imapd.server(Debian, p), "/usr/bin/imapd");
        assert_eq!(Service::Pop3d.login(Courier2, p), "/opt/ci/sbin/pop3login");
        assert_eq!(Service::Pop3dSsl.server(Courier2, p), "/opt/ci/bin/pop3d");
        assert_eq!(
            Service::ImapdSsl.login(Courier2, p),
            "/opt/ci/sbin/imaplogin"
        );
        assert_eq!(
            Service::default_couriertls(Courier2, p),
            "/opt/ci/bin/couriertls"
        );
        assert_eq!(
            Service::default_couriertls(Debian, p),
            "/usr/bin/couriertls"
        );
    }

    #[test]
    fn tls_wrapper_only_for_ssl() {
        assert!(
            Service::Imapd
                .tls_wrapper("/usr/bin/couriertls", "courier")
                .is_empty()
        );
        assert!(
            Service::Pop3d
                .tls_wrapper("/usr/bin/couriertls", "courier")
                .is_empty()
        );
        assert_eq!(
            Service::Pop3dSsl.tls_wrapper("/usr/bin/couriertls", "courier"),
            ["/usr/bin/couriertls", "-server", "-tcpd", "-user=courier"]
        );
        assert_eq!(
            Service::ImapdSsl.tls_wrapper("/x/couriertls", ""),
            ["/x/couriertls", "-server", "-tcpd"]
        );
    }

    #[test]
    fn config_orders() {
        assert_eq!(
            Service::Imapd.config_files(Debian, "/usr"),
            ["/etc/courier/imapd", "/etc/courier/imapd-ssl"]
        );
        assert_eq!(
            Service::Imapd.config_files(Courier2, "/c"),
            ["/c/etc/imapd-ssl", "/c/etc/imapd"]
        );
        assert_eq!(Service::Pop3d.outer_order(), ["pop3d-ssl", "pop3d"]);
        assert_eq!(Service::Pop3dSsl.outer_order(), ["pop3d", "pop3d-ssl"]);
        assert_eq!(Service::Pop3d.inner_order(Debian), ["pop3d", "pop3d-ssl"]);
    }

    #[test]
    fn rc_assignments_table() {
        let names =
            |s: Service, l| -> Vec<&str> { s.rc_assignments(l).iter().map(|(n, _)| *n).collect() };
        assert_eq!(
            names(Service::Imapd, Debian),
            ["IMAP_STARTTLS", "PROXY_HOSTNAME"]
        );
        assert_eq!(
            names(Service::Pop3dSsl, Debian),
            [
                "PROXY_HOSTNAME",
                "POP3_TLS",
                "POP3_STARTTLS",
                "POP3_TLS_REQUIRED"
            ]
        );
        assert_eq!(
            Service::Imapd.rc_assignments(Courier2)[2],
            ("TLS_PROTOCOL", RcValue::Outer("TLS_STARTTLS_PROTOCOL"))
        );
    }

    #[test]
    fn cache_reset_rule() {
        assert_eq!(Service::cache_reset(None, "courier", "courier"), None);
        assert_eq!(Service::cache_reset(Some(b""), "courier", "courier"), None);
        let r = Service::cache_reset(Some(b"/var/lib/courier/c"), "courier", "mail").unwrap();
        assert_eq!(r.path, std::path::Path::new("/var/lib/courier/c"));
        assert_eq!(
            (r.owner.as_str(), r.group.as_str(), r.mode),
            ("courier", "mail", 0o600)
        );
    }

    #[test]
    fn plain_words() {
        assert!(plain_word(b"YES"));
        assert!(plain_word(b""));
        assert!(plain_word(b"host.example.org"));
        assert!(!plain_word(b"a b"));
        assert!(!plain_word(b"$x"));
    }
}
