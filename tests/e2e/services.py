#!/usr/bin/env python3
"""End-to-end test of the four Courier services under daemontools.

    python3 tests/e2e/services.py [--courier-run PATH] [--keep] [-v] [--only NAME]

Needs root, loopback only, and the Debian 12 packages daemontools, ucspi-tcp,
courier-imap, courier-pop, courier-authdaemon and openssl.  Standard library
only; the helpers (user, Maildir, authdaemond, supervise, /proc) are
e2e.py's.

Setup: a throwaway user with a password and a Maildir of 3 messages;
authdaemond started (and stopped after) unless one already answers; a
self-signed certificate made here (EC P-256, subjectAltName IP:127.0.0.1,
so the clients VERIFY it: the certificate served is ours); per service a
copy of Debian's two config files with the address, port, TLS_CERTFILE and
TLS_CACHEFILE pointing at the test's, and a service directory whose run file
is `service=NAME layout=debian config="..."` under real `supervise` with a
multilog log/run.

Steps, per service (imapd, imapd-ssl, pop3d, pop3d-ssl):
  NAME-up        supervise starts it; svstat's pid is the only listener
                 on the port, a couriertcpd (layout=debian's front end, as
                 Debian's rc runs it) whose parent is supervise
  NAME-session   imapd:     IMAP4: LOGIN before STARTTLS is refused (the
                            config copy says IMAP_TLS_REQUIRED=1), STARTTLS,
                            LOGIN, SELECT (EXISTS 3), FETCH subjects
                 imapd-ssl: IMAP4_SSL: LOGIN, SELECT, FETCH
                 pop3d:     POP3: STLS, USER/PASS, STAT (3), RETR
                 pop3d-ssl: POP3_SSL: USER/PASS, RETR
  NAME-env       during the session: the listener's /proc/PID/environ
                 equals the plan's env (`courier-run ./run --dry-run
                 --format json`), and the running imapd/courierpop3d has
                 every variable of the plan with the same value (the extra
                 ones are those couriertcpd, couriertls and the login program
                 add, listed below); for the imapd services also the one
                 the access list's `allow,COURIERRUN_E2E=from-access` line
                 sets (IMAPACCESSFILE is a copy: couriertcpd -access=)

Every wait is bounded; everything is torn down in a `finally`.  Output:
`ok STEP [time]` / `FAIL STEP: reason` with the service log, then the wall
time and `N passed, M failed`; exit 1 when anything failed.

`--standin` (hidden, for developing this harness) replaces courier-run with
/bin/sh run scripts that do what Courier's rc does (env -i sh -c 'set -a;
. base; . ssl; ...; exec tcpserver ...').
"""

import argparse
import imaplib
import json
import os
import poplib
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
from e2e import (Fail, HOST, Service, descendants, listeners, note,  # noqa: E402
                 proc_environ, proc_exe, proc_stat_fields, read_text, run,
                 tail, wait_for, write_file)

TIMEOUT = 15.0
CONFIG_DIR = "/etc/courier"
COURIERTLS = "/usr/bin/couriertls"

# service -> (base config, ssl config, login, server, ssl?)
SERVICES = {
    "imapd": ("imapd", "imapd-ssl", "/usr/lib/courier/courier/imaplogin",
              "/usr/bin/imapd", False),
    "imapd-ssl": ("imapd", "imapd-ssl", "/usr/lib/courier/courier/imaplogin",
                  "/usr/bin/imapd", True),
    "pop3d": ("pop3d", "pop3d-ssl", "/usr/lib/courier/courier/courierpop3login",
              "/usr/lib/courier/courier/courierpop3d", False),
    "pop3d-ssl": ("pop3d", "pop3d-ssl",
                  "/usr/lib/courier/courier/courierpop3login",
                  "/usr/lib/courier/courier/courierpop3d", True),
}

# Variables the chain adds between tcpserver and the server program:
# tcpserver (TCP*, PROTO), couriertls -tcpd (none it keeps), the login
# program and authlib (AUTH*, HOME, MAILDIR, ...), Courier's TLS layer.
ADDED = re.compile(r"^(TCP[A-Z]*|PROTO|AUTH[A-Z_]*|HOME|MAILDIR|OPTIONS|"
                   r"SHELL|USER|LOGNAME|MAILDIRQUOTA|IMAPLOGINTAG|"
                   r"IMAP_STARTTLS|POP3_STARTTLS|COURIERTLS_[A-Z_]*|"
                   r"TLS_[A-Z_]*|IMAP_TLS|POP3_TLS|IMAP_CAPABILITY|"
                   r"POP3AUTH|PROXY_HOSTNAME|IMAPLOGINTAG|BANNER|"
                   r"IMAP_CLIENT_ID|IMAP_ENHANCEDIDLE|IMAP_ID_FIELDS|"
                   r"IMAP_CAPABILITY_TLS|POP3AUTH_TLS|UID|GID|PROTOCOL|UTF8|"
                   # couriertcpd's access list (allow,NAME=VALUE)
                   r"COURIERRUN_E2E|"
                   # imaplogin/pop3login set it to 0 once STARTTLS is done,
                   # so the server they exec does not ask for it again.
                   r"IMAP_TLS_REQUIRED|POP3_TLS_REQUIRED)$")


def ssl_context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = True      # the certificate names IP:127.0.0.1
    return ctx


class Suite:
    def __init__(self, args):
        self.args = args
        self.w = e2e.World(args)      # user, Maildir, authdaemond, teardown
        self.tmp = self.w.tmp
        self.svcs = {}                # name -> (Service, port, pid)
        self.cafile = None
        self.certfile = None

    # ---- setup --------------------------------------------------------------

    def setup(self):
        self.w.setup()
        d = os.path.join(self.tmp, "tls")
        os.makedirs(d)
        # mkdtemp makes a 0700 directory: the courier account, which reads
        # the certificate for STARTTLS, must be able to reach it.
        os.chmod(self.tmp, 0o755)
        os.chmod(d, 0o755)
        key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
             "-out", crt, "-days", "2", "-subj", "/CN=courier-run e2e",
             "-addext", "subjectAltName=IP:127.0.0.1"])
        self.certfile = os.path.join(d, "server.pem")
        with open(self.certfile, "wb") as out:
            for p in (crt, key):
                with open(p, "rb") as f:
                    out.write(f.read())
        # as Debian's /etc/courier/imapd.pem: root:courier 0640. For
        # STARTTLS the login program runs couriertls as the courier
        # account, which must read the file (0600 root: "Permission denied",
        # and the client sees only a failed handshake).
        os.chown(self.certfile, 0, e2e.pwd.getpwnam("courier").pw_gid)
        os.chmod(self.certfile, 0o640)
        os.unlink(key)
        self.cafile = crt

    # ---- one service --------------------------------------------------------

    def configs(self, name, port):
        base, sslname, _, _, is_ssl = SERVICES[name]
        etc = os.path.join(self.tmp, name, "etc")
        os.makedirs(etc, exist_ok=True)     # again on a port retry: rewritten
        paths = []
        for cfg in (base, sslname):
            dst = os.path.join(etc, cfg)
            shutil.copyfile(os.path.join(CONFIG_DIR, cfg), dst)
            paths.append(dst)
        extra_base = "\n# courier-run e2e\n"
        extra_ssl = ("\n# courier-run e2e\nTLS_CERTFILE=%s\n"
                     "TLS_CACHEFILE=%s\n" % (
                         self.certfile, os.path.join(etc, "tls-cache")))
        if not os.path.exists("/etc/courier/dhparams.pem"):
            extra_ssl += "TLS_DHPARAMS=\n"
        # couriertcpd -access=IMAPACCESSFILE.dat (the imapd services; built
        # by makedat on start): ours, not the machine's
        access = os.path.join(etc, "imapaccess")
        write_file(access, "%s\tallow,COURIERRUN_E2E=from-access\n" % HOST)
        extra_base += "IMAPACCESSFILE=%s\n" % access
        if is_ssl:
            extra_ssl += "SSLADDRESS=%s\nSSLPORT=%d\n" % (HOST, port)
        else:
            extra_base += "ADDRESS=%s\nPORT=%d\n" % (HOST, port)
        if name == "imapd":
            extra_ssl += "IMAP_TLS_REQUIRED=1\n"
        for p, extra in zip(paths, (extra_base, extra_ssl)):
            with open(p, "a") as f:
                f.write(extra)
        return paths

    def run_script(self, name, paths, port):
        if self.args.standin:
            return standin(name, paths, port)
        return ("#!%s\n"
                "# courier-%s: Courier's %s under supervise (courier-run e2e)\n"
                "service=%s\n"
                "layout=debian\n"
                'config="%s"\n' % (self.w.courier_run_path(), name, name,
                                   name, " ".join(paths)))

    def start(self, name):
        sd = os.path.join(self.tmp, name, "service")
        os.makedirs(os.path.join(sd, "log"))
        write_file(os.path.join(sd, "log", "run"),
                   "#!/bin/sh\nexec multilog t ./main\n", 0o755)
        svc = Service(sd, os.path.join(self.tmp, name, "supervise.err"))
        self.w.add_service(svc)

        def configure(port):
            # the port is named by the config copies (PORT= or SSLPORT=)
            paths = self.configs(name, port)
            write_file(os.path.join(sd, "run"),
                       self.run_script(name, paths, port), 0o755)
        # couriertcpd binds the port itself: retried if it finds it taken
        port, pid = e2e.start_service(svc, name, configure)
        st, spid = svc.status()
        comm, _, ppid, _ = proc_stat_fields(pid)
        front = "tcpserver" if self.args.standin else "couriertcpd"
        if spid != pid or comm != front or ppid != svc.sup.pid:
            raise Fail("svstat pid %s, listener %d is %s (parent %d, "
                       "supervise %d)" % (spid, pid, proc_exe(pid), ppid,
                                          svc.sup.pid))
        self.svcs[name] = (svc, port, pid)
        note("%s up: pid %d port %d" % (name, pid, port))

    def log(self, name):
        def lines():
            if name not in self.svcs:
                sd = os.path.join(self.tmp, name, "service")
                cur = os.path.join(sd, "log", "main", "current")
                return ["service log %s:" % cur] + ["  | " + l for l in tail(cur)]
            svc, port, _ = self.svcs[name]
            out = ["svstat: %s %s; listeners on %d: %s" % (
                svc.status() + (port, sorted(listeners(port)) or "none"))]
            out += ["service log %s (last lines):" % svc.current]
            out += ["  | " + l for l in tail(svc.current)]
            err = read_text(svc.errfile).strip()
            if err:
                out += ["supervise stderr:"] + ["  | " + l for l in err.splitlines()[-10:]]
            return out
        return lines

    # ---- the environment ----------------------------------------------------

    def plan_env(self, name):
        svc, _, _ = self.svcs[name]
        # as supervise runs it: in the service directory (./env, ./run)
        try:
            p = subprocess.run(
                [self.w.courier_run_path(), "./run", "--dry-run", "--format",
                 "json"], capture_output=True, text=True, timeout=TIMEOUT,
                cwd=svc.path)
        except subprocess.TimeoutExpired:
            raise Fail("--dry-run timed out")
        if p.returncode != 0:
            raise Fail("--dry-run: exit %d: %s" % (p.returncode, p.stderr))
        return json.loads(p.stdout)["env"]

    def env_truth(self, name):
        """Called while a session is logged in."""
        _, _, pid = self.svcs[name]
        server = SERVICES[name][3]
        found = [p for p in descendants(pid)
                 if os.path.realpath(proc_exe(p)) == os.path.realpath(server)]
        if not found:
            raise Fail("no %s below the front end %d" % (server, pid))
        running = proc_environ(found[0])
        listener = proc_environ(pid)
        if self.args.standin:
            plan = listener
        else:
            plan = self.plan_env(name)
            if listener != plan:
                diff = sorted(set(listener.items()) ^ set(plan.items()))
                raise Fail("the front end's environment differs from the plan's: %s"
                           % diff[:10])
        problems = []
        for k, v in sorted(plan.items()):
            if k not in running:
                if not ADDED.match(k):
                    problems.append("%s missing" % k)
            elif running[k] != v and not ADDED.match(k):
                problems.append("%s=%r, plan %r" % (k, running[k], v))
        if name.startswith("imapd") and not self.args.standin:
            # the access list's allow,NAME=VALUE reached imapd
            got = running.get("COURIERRUN_E2E")
            if got != "from-access":
                problems.append("COURIERRUN_E2E=%r, the access list says "
                                "'from-access'" % got)
        extra = sorted(k for k in running if k not in plan)
        bad_extra = [k for k in extra if not ADDED.match(k)]
        if problems or bad_extra:
            raise Fail("%s (pid %d) environment vs plan: %s; unexpected extra: %s"
                       % (server, found[0], problems, bad_extra))
        note("%s env: %d from the plan, added by the chain: %s" % (
            name, len(plan), " ".join(extra)))

    # ---- sessions -----------------------------------------------------------

    def check_subjects(self, got):
        if sorted(got) != sorted(self.w.subjects):
            raise Fail("subjects %r, want %r" % (got, self.w.subjects))

    def imap_fetch(self, c):
        typ, data = c.login(self.w.user, self.w.password)
        typ, data = c.select("INBOX")
        if typ != "OK" or int(data[0]) != 3:
            raise Fail("SELECT INBOX: %s %r (want EXISTS 3)" % (typ, data))
        typ, data = c.fetch("1:3", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        got = []
        for item in data:
            if isinstance(item, tuple):
                m = re.search(rb"Subject: ([^\r\n]*)", item[1])
                got.append(m.group(1).decode() if m else repr(item[1]))
        self.check_subjects(got)

    def session_imapd(self, name):
        _, port, _ = self.svcs[name]
        c = imaplib.IMAP4(HOST, port, timeout=TIMEOUT)
        try:
            caps = c.capabilities
            if "STARTTLS" not in caps:
                raise Fail("no STARTTLS in the capabilities %s" % (caps,))
            try:
                c.login(self.w.user, self.w.password)
                raise Fail("LOGIN before STARTTLS accepted, but the config "
                           "says IMAP_TLS_REQUIRED=1")
            except imaplib.IMAP4.error as e:
                note("LOGIN before STARTTLS refused: %s" % e)
            c.starttls(ssl_context(self.cafile))
            self.imap_fetch(c)
            self.env_truth(name)
            c.logout()
        finally:
            try:
                c.shutdown()
            except Exception:
                pass

    def session_imapd_ssl(self, name):
        _, port, _ = self.svcs[name]
        c = imaplib.IMAP4_SSL(HOST, port, ssl_context=ssl_context(self.cafile),
                              timeout=TIMEOUT)
        try:
            self.imap_fetch(c)
            self.env_truth(name)
            c.logout()
        finally:
            try:
                c.shutdown()
            except Exception:
                pass

    def pop_fetch(self, p):
        p.user(self.w.user)
        p.pass_(self.w.password)
        n, _ = p.stat()
        if n != 3:
            raise Fail("STAT: %d messages, want 3" % n)
        got = []
        for i in (1, 2, 3):
            _, lines, _ = p.retr(i)
            subj = [l[len(b"Subject: "):].decode() for l in lines
                    if l.startswith(b"Subject: ")]
            got += subj or ["(no Subject in %r)" % lines[:5]]
        self.check_subjects(got)

    def session_pop3d(self, name):
        _, port, _ = self.svcs[name]
        p = poplib.POP3(HOST, port, timeout=TIMEOUT)
        try:
            if "STLS" not in p.capa():
                raise Fail("no STLS in CAPA %s" % p.capa())
            p.stls(ssl_context(self.cafile))
            self.pop_fetch(p)
            self.env_truth(name)
            p.quit()
        finally:
            try:
                p.close()
            except OSError:
                pass

    def session_pop3d_ssl(self, name):
        _, port, _ = self.svcs[name]
        p = poplib.POP3_SSL(HOST, port, context=ssl_context(self.cafile),
                            timeout=TIMEOUT)
        try:
            self.pop_fetch(p)
            self.env_truth(name)
            p.quit()
        finally:
            try:
                p.close()
            except OSError:
                pass

    def session(self, name):
        fn = {"imapd": self.session_imapd, "imapd-ssl": self.session_imapd_ssl,
              "pop3d": self.session_pop3d,
              "pop3d-ssl": self.session_pop3d_ssl}[name]
        try:
            fn(name)
        except (imaplib.IMAP4.error, poplib.error_proto) as e:
            raise Fail("protocol error: %s" % e)
        except (OSError, ssl.SSLError) as e:
            if e2e.VERBOSE:
                import traceback
                traceback.print_exc(file=sys.stdout)
            raise Fail("connection: %r" % e)


# --------------------------------------------------------------------------

def standin(name, paths, port):
    """What Courier's rc does, as a /bin/sh run script (for --standin)."""
    base, sslname, login, server, is_ssl = SERVICES[name]
    assigns = {
        "imapd": 'IMAP_STARTTLS=$IMAPDSTARTTLS ; PROXY_HOSTNAME= ;',
        "imapd-ssl": "PROXY_HOSTNAME= ; IMAP_TLS=1 ;",
        "pop3d": "PROXY_HOSTNAME= ;",
        "pop3d-ssl": "PROXY_HOSTNAME= ; POP3_TLS=1 ; POP3_STARTTLS=NO ; "
                     "POP3_TLS_REQUIRED=0 ;",
    }[name]
    tls = "%s -server -tcpd -user=courier " % COURIERTLS if is_ssl else ""
    return ("#!/bin/sh\n"
            "# services.py --standin: the rc's way, not courier-run\n"
            "exec 2>&1\n"
            ". %s\n. %s\n"
            'echo "*** Starting %s (stand-in)..."\n'
            'exec env -i /bin/sh -c "set -a ; prefix=/usr ; exec_prefix=/usr ; '
            'sbindir=/usr/sbin ; bindir=/usr/bin ; . %s ; . %s ; %s '
            'exec tcpserver -v -RH -l0 -c 40 %s %d %s%s %s Maildir"\n'
            % (paths[1], paths[0], name, paths[0], paths[1], assigns, HOST,
               port, tls, login, server))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    crate = os.path.dirname(os.path.dirname(here))
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(crate, "target")
    ap = argparse.ArgumentParser(description="courier-run four-service e2e test")
    ap.add_argument("--courier-run", default=os.path.join(target, "debug",
                                                          "courier-run"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--only", action="append", choices=list(SERVICES))
    ap.add_argument("--standin", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    e2e.VERBOSE = args.verbose

    if os.geteuid() != 0:
        print("FAIL setup: must run as root\n0 passed, 1 failed")
        return 1
    missing = [p for p in ("svstat", "svc", "supervise", "multilog",
                           "tcpserver", "maildirmake", "authtest", "useradd",
                           "openssl") if not shutil.which(p)]
    missing += [p for p in [COURIERTLS, e2e.AUTHDAEMOND] +
                [v[2] for v in SERVICES.values()] +
                [v[3] for v in SERVICES.values()] +
                [os.path.join(CONFIG_DIR, n) for n in
                 ("imapd", "imapd-ssl", "pop3d", "pop3d-ssl")]
                if not os.path.exists(p)]
    if missing:
        print("FAIL setup: missing %s (install daemontools ucspi-tcp "
              "courier-imap courier-pop courier-authdaemon openssl)"
              % ", ".join(sorted(set(missing))))
        print("0 passed, 1 failed")
        return 1

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    t_start = time.monotonic()
    s = Suite(args)
    print("# %s; temp dir %s, user %s" % (
        "--standin: /bin/sh run scripts" if args.standin
        else "courier-run: %s" % os.path.abspath(args.courier_run),
        s.tmp, s.w.user), flush=True)
    steps = [("setup", s.setup, [], None)]
    for name in args.only or list(SERVICES):
        steps += [
            ("%s-up" % name, lambda n=name: s.start(n), ["setup"], s.log(name)),
            ("%s-session" % name, lambda n=name: s.session(n),
             ["%s-up" % name], s.log(name)),
        ]
    return e2e.run_steps(steps, s.w.teardown, t_start)


if __name__ == "__main__":
    sys.exit(main())
