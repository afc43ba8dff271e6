#!/usr/bin/env python3
"""Operating a running service: --status, --probe, --restart, s6 readiness,
and the refused start of a TLS service without its certificate.

    python3 tests/operate/operate.py [--courier-run PATH] [--keep] [-v]
                                     [--only STEP,...]

Needs root, loopback only, and the Debian 12 packages daemontools, runit,
s6, ucspi-tcp, courier-imap, courier-pop, courier-authdaemon, openssl.
Standard library only; the helpers (user, authdaemond, bounded waits,
/proc, ending processes by pid) come from tests/e2e/e2e.py, the
certificate and the config copies from tests/e2e/services.py.

Steps, each `ok NAME` or `FAIL NAME: why`, then `N passed, M failed`:

  setup              a throwaway user; authdaemond answers; a certificate
  status-KIND        KIND = daemontools, runit, s6: a service made by
                     `courier-run init --supervisor KIND` runs; --status
                     exits 0 ("in effect"); after a config edit 1 and names
                     the variable (text and JSON); --restart with a broken
                     config exits 100 and the pid is unchanged; with a good
                     one exits 0, the pid changed, --status 0 and --probe 0;
                     stopped: --status 2, --probe 2
  probe-SERVICE      SERVICE = imapd (STARTTLS), imapd-ssl, pop3d (STLS),
                     pop3d-ssl under daemontools: --probe exits 0 with
                     "certificate matches TLS_CERTFILE"
  probe-expiring     imapd-ssl with a certificate valid 10 more days:
                     --probe exits 1 (WARNING)
  s6-readiness       init's s6 service with a front end that sleeps 2 s
                     before it execs tcpserver: `s6-svwait -U` returns only
                     once the port greets, and not before the 2 s
  missing-cert       imapd-ssl whose TLS_CERTFILE does not exist: the launch
                     exits 111 with --check's message in the log; --dry-run
                     shows it (exit 111)
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import e2e  # noqa: E402
import services  # noqa: E402
from e2e import (Fail, HOST, run, wait_for, listeners, records_of,  # noqa: E402
                 descendants, end_processes, read_text, write_file)

NOTES = []          # printed at the end, for the note
S = None            # the services.Suite (user, certificate, World)


def cr(args, cwd, timeout=60):
    """courier-run ARGS in cwd: (exit code, stdout + stderr)."""
    p = subprocess.run([S.w.courier_run_path()] + args, cwd=cwd,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def configs(base, name, port, certfile, extra_base="", extra_ssl=""):
    """Copies of Debian's two config files for service `name` in base/etc,
    naming the port, the certificate and a private TLS cache."""
    b, ssl_name, _, _, is_ssl = services.SERVICES[name]
    etc = os.path.join(base, "etc")
    os.makedirs(etc, exist_ok=True)
    paths = []
    for cfg in (b, ssl_name):
        dst = os.path.join(etc, cfg)
        shutil.copyfile(os.path.join(services.CONFIG_DIR, cfg), dst)
        paths.append(dst)
    eb = "\n# courier-run operate test\n" + extra_base
    es = ("\n# courier-run operate test\nTLS_CERTFILE=%s\nTLS_CACHEFILE=%s\n"
          % (certfile, os.path.join(etc, "tls-cache"))) + extra_ssl
    if not os.path.exists("/etc/courier/dhparams.pem"):
        es += "TLS_DHPARAMS=\n"
    if is_ssl:
        es += "SSLADDRESS=%s\nSSLPORT=%d\n" % (HOST, port)
    else:
        eb += "ADDRESS=%s\nPORT=%d\n" % (HOST, port)
    for p, extra in zip(paths, (eb, es)):
        with open(p, "a") as f:
            f.write(extra)
    return paths


class Sup:
    """A service directory made by `courier-run init --supervisor KIND`,
    run by that suite; we own the top pids and end what we saw by pid."""

    def __init__(self, kind, base, name="imapd", server=None):
        self.kind, self.base, self.name = kind, base, name
        self.scan = os.path.join(base, "scan")
        self.dir = os.path.join(self.scan, name) if kind == "s6" \
            else os.path.join(base, "service")
        os.makedirs(self.scan, exist_ok=True)
        svc = name
        code, out = cr(["init", "--supervisor", kind, "--service", svc, self.dir], "/")
        if code != 0:
            raise Fail("init --supervisor %s: %s" % (kind, out))
        self.server = server
        self.paths = None
        self.port = None
        self.procs = []
        self.seen = []
        self.current = os.path.join(self.dir, "log", "main", "current")

    def configure(self, port, certfile, extra_base="", extra_ssl=""):
        self.port = port
        self.paths = configs(self.base, self.name, port, certfile, extra_base, extra_ssl)
        run_path = os.path.join(self.dir, "run")
        text = read_text(run_path)
        text = re.sub(r"(?m)^config=.*\n|^server=.*\n", "", text)
        text += 'config="%s"\n' % " ".join(self.paths)
        if self.server:
            text += 'server="%s"\n' % self.server
        write_file(run_path, text, 0o755)

    def start(self):
        err = open(os.path.join(self.base, "sup.err"), "ab")
        try:
            if self.kind == "daemontools":
                r, w = os.pipe()
                self.procs.append(subprocess.Popen(
                    ["supervise", os.path.join(self.dir, "log")], stdin=r,
                    stdout=err, stderr=err, cwd="/", start_new_session=True))
                self.procs.append(subprocess.Popen(
                    ["supervise", self.dir], stdin=subprocess.DEVNULL, stdout=w,
                    stderr=err, cwd="/", start_new_session=True))
                os.close(r)
                os.close(w)
            elif self.kind == "runit":
                self.procs.append(subprocess.Popen(
                    ["runsv", self.dir], stdin=subprocess.DEVNULL, stdout=err,
                    stderr=err, cwd="/", start_new_session=True))
            else:
                self.procs.append(subprocess.Popen(
                    ["s6-svscan", self.scan], stdin=subprocess.DEVNULL, stdout=err,
                    stderr=err, cwd="/", start_new_session=True))
        finally:
            err.close()
        self.remember()

    def remember(self):
        pids = []
        for p in self.procs:
            if p.poll() is None:
                pids += [p.pid] + descendants(p.pid)
        known = {p for p, _ in self.seen}
        self.seen += [r for r in records_of(pids) if r[0] not in known]

    def pid(self):
        """The pid the suite's own status tool reports, or None."""
        if self.kind == "daemontools":
            st, pid = e2e.svstat(self.dir)
            return pid if st == "up" else None
        argv = {"runit": ["sv", "status", self.dir], "s6": ["s6-svstat", self.dir]}
        p = run(argv[self.kind], check=False, timeout=5)
        pat = {"runit": r"^run: [^:]*: \(pid (\d+)\)", "s6": r"^up \(pid (\d+)\)"}
        m = re.search(pat[self.kind], (p.stdout + p.stderr).strip())
        return int(m.group(1)) if m else None

    def ready(self, old=None):
        pid = self.pid()
        if pid is None or pid == old:
            return None
        return pid if listeners(self.port) == {pid} else None

    def log(self):
        return read_text(self.current)

    def start_on_port(self, certfile, extra_base="", extra_ssl=""):
        # The launch waits for authdaemond: make sure it answers (other
        # tests on the machine may have stopped the shared daemon).
        authdaemond_up()

        def configure(port):
            self.configure(port, certfile, extra_base, extra_ssl)
        try:
            _, pid, _ = e2e.start_with_port(
                "%s %s" % (self.kind, self.name), configure, self.start,
                lambda port: self.ready(), self.log, self.stop)
        except Fail as e:
            raise Fail("%s; log: %s" % (e, self.log()[-600:]))
        self.remember()
        return pid

    def wait_up(self, old=None):
        pid = wait_for(lambda: self.ready(old),
                       "%s: status pid == listener on %d" % (self.kind, self.port))
        self.remember()
        return pid

    def down(self):
        """Stop the service, keep the supervisor."""
        argv = {"daemontools": ["svc", "-d"], "runit": ["sv", "-w", "5", "down"],
                "s6": ["s6-svc", "-wd", "-T", "5000", "-d"]}[self.kind]
        self.remember()
        run(argv + [self.dir], check=False, timeout=10)
        wait_for(lambda: self.pid() is None and not listeners(self.port),
                 "%s: service down" % self.kind)

    def stop(self):
        self.remember()
        if self.kind == "daemontools":
            for d in (self.dir, os.path.join(self.dir, "log")):
                run(["svc", "-dx", d], check=False, timeout=5)
        elif self.kind == "runit":
            run(["sv", "-w", "5", "force-stop", self.dir], check=False, timeout=10)
            run(["sv", "exit", self.dir], check=False, timeout=5)
            run(["sv", "exit", os.path.join(self.dir, "log")], check=False, timeout=5)
        else:
            run(["s6-svscanctl", "-t", self.scan], check=False, timeout=5)
        for p in self.procs:
            try:
                p.wait(timeout=8)
            except subprocess.TimeoutExpired:
                pass
        end_processes(self.seen, grace=3)
        self.procs = []


def authdaemond_up():
    """authdaemond answers (--restart refuses, as --check fails, when it
    does not). Other tests on the machine may stop and start the shared
    daemon meanwhile: a start that loses that race is tried again."""
    for _ in range(5):
        if S.w.authdaemon_answers():
            return
        try:
            S.w.ensure_authdaemond()
        except Fail:
            time.sleep(1)
    raise Fail("authdaemond does not answer")


def expect(code_out, want, what, has=None):
    code, out = code_out
    if code != want:
        raise Fail("%s: exit %d, not %d: %s" % (what, code, want, out[-800:]))
    if has is not None and not re.search(has, out):
        raise Fail("%s: no %r in: %s" % (what, has, out[-800:]))
    return out


def status_steps(kind):
    base = os.path.join(S.tmp, "status-" + kind)
    os.makedirs(base)
    sup = Sup(kind, base)
    S.w.cleanups.append(sup.stop)
    pid = sup.start_on_port(S.certfile)
    d = sup.dir
    out = expect(cr(["./run", "--status"], d), 0, "--status of the running service",
                 r"in effect: a restart would change nothing")
    NOTES.append("%s --status, running:\n%s" % (kind, out.rstrip()))
    # an edit of the config: named, exit 1
    with open(sup.paths[0], "a") as f:
        f.write("CRTEST_OPERATE=edited\n")
    out = expect(cr(["./run", "--status"], d), 1, "--status after an edit",
                 r'variable CRTEST_OPERATE added: "edited"')
    NOTES.append("%s --status, after an edit:\n%s" % (kind, out.rstrip()))
    code, out = cr(["./run", "--status", "--format", "json"], d)
    j = json.loads(out)
    if code != 1 or j["state"] != "up" or j["pid"] != pid or j["in_effect"] is not False \
            or j["supervisor"] != kind \
            or not any(c["name"] == "CRTEST_OPERATE" and c["change"] == "added"
                       for c in j["changes"]):
        raise Fail("--status --format json after an edit: exit %d, %s" % (code, out))
    # --restart with a broken config: refused, untouched
    good = read_text(sup.paths[0])
    write_file(sup.paths[0], good + "FOO=$(ls)\n")
    authdaemond_up()     # --restart checks it, as --check does
    expect(cr(["./run", "--restart"], d), 100, "--restart with a broken config",
           r"not restarted")
    time.sleep(1.5)     # a restart, had there been one, would show by now
    if sup.pid() != pid:
        raise Fail("--restart with a broken config: pid %s, was %d" % (sup.pid(), pid))
    # a good one: restarted, serving
    write_file(sup.paths[0], good)
    authdaemond_up()
    out = expect(cr(["./run", "--restart"], d), 0, "--restart with a good config",
                 r"restarted .*pid %d -> \d+, serving" % pid)
    NOTES.append("%s --restart: %s" % (kind, out.strip()))
    pid2 = sup.wait_up(old=pid)
    if pid2 == pid:
        raise Fail("--restart: the pid did not change")
    expect(cr(["./run", "--status"], d), 0, "--status after the restart")
    expect(cr(["./run", "--probe"], d), 0, "--probe after the restart", r"^IMAP OK - ")
    # stopped
    sup.down()
    expect(cr(["./run", "--status"], d), 2, "--status of the stopped service",
           r"not running")
    expect(cr(["./run", "--probe"], d), 2, "--probe of the stopped service",
           r"^IMAP CRITICAL - ")
    sup.stop()


def probe_step(name):
    base = os.path.join(S.tmp, "probe-" + name)
    os.makedirs(base)
    sup = Sup("daemontools", base, name)
    S.w.cleanups.append(sup.stop)
    sup.start_on_port(S.certfile)
    proto = "IMAP" if name.startswith("imap") else "POP3"
    out = expect(cr(["./run", "--probe"], sup.dir), 0, "--probe of %s" % name,
                 r"^%s OK - greeting in \d+ ms, .*certificate matches TLS_CERTFILE, "
                 r"expires in \d+ days" % proto)
    NOTES.append("%s --probe: %s" % (name, out.strip()))
    sup.stop()


def make_cert(days, tag):
    d = os.path.join(S.tmp, "tls-" + tag)
    os.makedirs(d)
    os.chmod(d, 0o755)
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
         "-days", str(days), "-subj", "/CN=courier-run operate %s" % tag])
    pem = os.path.join(d, "server.pem")
    with open(pem, "wb") as out:
        for p in (crt, key):
            with open(p, "rb") as f:
                out.write(f.read())
    os.chown(pem, 0, e2e.pwd.getpwnam("courier").pw_gid)
    os.chmod(pem, 0o640)
    return pem


def probe_expiring():
    base = os.path.join(S.tmp, "expiring")
    os.makedirs(base)
    pem = make_cert(10, "expiring")
    sup = Sup("daemontools", base, "imapd-ssl")
    S.w.cleanups.append(sup.stop)
    sup.start_on_port(pem)
    out = expect(cr(["./run", "--probe"], sup.dir), 1, "--probe, certificate expiring",
                 r"^IMAP WARNING - .*expires in (9|10) days")
    NOTES.append("imapd-ssl --probe, 10-day certificate: %s" % out.strip())
    sup.stop()


def greets(port):
    try:
        s = socket.create_connection((HOST, port), timeout=2)
    except OSError:
        return False
    try:
        s.settimeout(2)
        return s.recv(100).startswith(b"* OK")
    except OSError:
        return False
    finally:
        s.close()


def s6_readiness():
    base = os.path.join(S.tmp, "s6-ready")
    os.makedirs(base)
    # a front end that takes 2 s to bind: its name is tcpserver, so
    # courier-run gives it tcpserver's options
    slow = os.path.join(base, "slow")
    os.makedirs(slow)
    write_file(os.path.join(slow, "tcpserver"),
               "#!/bin/sh\nsleep 2\nexec /usr/bin/tcpserver \"$@\"\n", 0o755)
    sup = Sup("s6", base, server=os.path.join(slow, "tcpserver") + " -v -RH -l0")
    S.w.cleanups.append(sup.stop)
    for f in ("notification-fd", "data/check"):
        if not os.path.exists(os.path.join(sup.dir, f)):
            raise Fail("init --supervisor s6 made no %s" % f)
    sup.configure(e2e.candidate_port(), S.certfile)
    authdaemond_up()     # the launch waits for it
    t0 = time.monotonic()
    sup.start()
    wait_for(lambda: os.path.exists(os.path.join(sup.dir, "supervise", "status")),
             "s6-supervise's status file")
    w = subprocess.run(["s6-svwait", "-U", "-t", "25000", sup.dir],
                       capture_output=True, text=True, timeout=40)
    waited = time.monotonic() - t0
    serving = greets(sup.port)
    sup.remember()
    if w.returncode != 0:
        raise Fail("s6-svwait -U exited %d after %.1f s (%s); log: %s" % (
            w.returncode, waited, w.stderr.strip(), sup.log()[-600:]))
    if waited < 2.0:
        raise Fail("s6-svwait -U returned after %.2f s, before the front end "
                   "(2 s late) could listen" % waited)
    if not serving:
        raise Fail("s6-svwait -U returned after %.1f s, but the port does not greet"
                   % waited)
    st = run(["s6-svstat", sup.dir], check=False, timeout=5).stdout.strip()
    if "ready" not in st:
        raise Fail("s6-svstat says %r" % st)
    NOTES.append("s6 readiness: s6-svwait -U returned after %.1f s (front end "
                 "2 s late); s6-svstat: %s" % (waited, st))
    sup.stop()


def missing_cert():
    base = os.path.join(S.tmp, "nocert")
    os.makedirs(base)
    sup = Sup("daemontools", base, "imapd-ssl")
    S.w.cleanups.append(sup.stop)
    sup.configure(e2e.candidate_port(), os.path.join(base, "missing.pem"))
    want = (r"courier-run: fatal: tls \(imapd-ssl\): TLS_CERTFILE \S*missing.pem "
            r"does not exist")
    out = expect(cr(["./run", "--dry-run"], sup.dir), 111, "--dry-run without the certificate",
                 want)
    authdaemond_up()     # else the launch waits for it, and says so first
    sup.start()
    wait_for(lambda: re.search(want, sup.log()),
             "the launch's message in %s" % sup.current)
    if listeners(sup.port):
        raise Fail("something listens on %d although the certificate is missing"
                   % sup.port)
    expect(cr(["./run", "--check"], sup.dir), 1, "--check without the certificate",
           r"FAIL tls \(imapd-ssl\): TLS_CERTFILE \S*missing.pem does not exist")
    NOTES.append("missing certificate, log: %s" % re.search(
        want + r".*", sup.log()).group(0)[:200])
    sup.stop()


def main():
    global S
    ap = argparse.ArgumentParser()
    crate = os.path.dirname(os.path.dirname(HERE))
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(crate, "target")
    ap.add_argument("--courier-run", default=os.path.join(target, "debug", "courier-run"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    args.standin = False
    e2e.VERBOSE = args.verbose
    missing = [p for p in ("supervise", "svstat", "svc", "multilog", "runsv", "sv",
                           "svlogd", "s6-svscan", "s6-svstat", "s6-svc", "s6-svwait",
                           "s6-log", "s6-notifyoncheck", "tcpserver", "openssl",
                           "maildirmake", "authtest")
               if not shutil.which(p)]
    if os.geteuid() != 0 or missing:
        print("FAIL setup: needs root and %s" % (missing or "nothing else"))
        print("0 passed, 1 failed")
        return 1
    S = services.Suite(args)
    S.w.tmp_keep = args.keep
    def setup():
        S.setup()
        # services.py's certificate is valid 2 days: within --probe's
        # warning window. One of a year for every OK.
        S.certfile = make_cert(365, "main")
    steps = [("setup", setup)]
    steps += [("status-" + k, (lambda k=k: status_steps(k)))
              for k in ("daemontools", "runit", "s6")]
    steps += [("probe-" + n, (lambda n=n: probe_step(n)))
              for n in ("imapd", "imapd-ssl", "pop3d", "pop3d-ssl")]
    steps += [("probe-expiring", probe_expiring), ("s6-readiness", s6_readiness),
              ("missing-cert", missing_cert)]
    only = set(filter(None, args.only.split(",")))
    t0 = time.monotonic()
    todo = [(name, fn, [] if name == "setup" else ["setup"], None)
            for name, fn in steps if not only or name in only or name == "setup"]

    def notes():
        for n in NOTES:
            for line in n.splitlines():
                print("# " + line)
    return e2e.run_steps(todo, S.w.teardown, t0, notes)


if __name__ == "__main__":
    sys.exit(main())
