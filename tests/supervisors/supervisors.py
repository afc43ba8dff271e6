#!/usr/bin/env python3
"""courier-run under runit and s6, and its front ends.

    python3 tests/supervisors/supervisors.py [--courier-run PATH] [--keep] [-v]
                                             [--only STEP,...]

Needs root, loopback only, and the Debian 12 packages runit, s6, ipsvd,
ucspi-tcp, courier-imap, courier-authdaemon. Standard library only; the
helpers (user, Maildir, authdaemond, listeners, bounded waits, ending
processes by pid) come from tests/e2e/e2e.py.

Steps, each `ok NAME` or `FAIL NAME: why`, then `N passed, M failed`:

  setup             a throwaway user with a Maildir; authdaemond answers
  runit             the contrib-style service (layout=debian) under `runsv`
                    with svlogd: `sv status` pid == the listener's pid;
                    LOGIN works; a config change + `sv t` shows in the
                    client's CAPABILITY; a broken config's
                    `courier-run: fatal: FILE:LINE:COL` reaches log/main/current
  s6                the same under `s6-svscan` (s6-supervise runs
                    `./run SERVICEDIR`) with s6-log; `s6-svstat` pid
                    (both run couriertcpd, layout=debian's front end: a deny
                    line applied with `--rebuild-access`, i.e. makedat and
                    `sv hup` / `s6-svc -h`, refuses 127.0.0.2, same pid)
  tcpsvd-maxperip   server="tcpsvd -v", MAXPERIP=2: two clients from
                    127.0.0.1 get a greeting, the third is closed at once
  access-tcpserver  IMAPACCESSFILE with allow,NAME=VALUE / deny lines under
  access-tcpsvd     each front end: 127.0.0.1 logs in and imapd's environment
                    (/proc/PID/environ) holds the variable; 127.0.0.2 is
                    refused; a list denying 127.0.0.1 refuses it

Every supervisor and server started here is ended in a `finally`, by pid.
Ports: the front end binds its port itself, so the run file names a
candidate port and e2e.start_with_port() stops, re-ports and restarts the
service when the front end logs `unable to bind...: address already used`.
"""

import argparse
import imaplib
import os
import re
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import e2e  # noqa: E402
from e2e import Fail, run, wait_for, listeners, records_of, descendants, \
    end_processes, read_text, write_file, proc_environ, HOST  # noqa: E402

CAP_TOKEN = "XSUPERVISORTEST"
ACCESS_VAR, ACCESS_VALUE = "CRTEST_ACCESS", "from-the-access-list"
STATUS_LINES = []   # printed at the end, for the note


def greeting(port, source=HOST, timeout=5.0):
    """Connect from `source`; return (socket, first bytes) — b'' when the
    server closed the connection without a word (refused)."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect((HOST, port))
    try:
        data = s.recv(200)
    except (ConnectionResetError, socket.timeout):
        data = b""
    return s, data


def refused(port, source=HOST):
    s, data = greeting(port, source)
    s.close()
    return not data.startswith(b"* OK")


class Sup:
    """A service dir (with log/) run by one supervision suite; we own the
    top pid and remember every pid we see under it."""

    def __init__(self, kind, base, config):
        self.kind, self.port, self.config = kind, None, config
        self.scan = os.path.join(base, kind + "-scan")
        self.path = os.path.join(self.scan, "imapd")
        self.log = os.path.join(self.path, "log")
        self.current = os.path.join(self.log, "main", "current")
        os.makedirs(os.path.join(self.log, "main"))
        logger = {"runit": "svlogd -tt ./main", "s6": "s6-log t ./main"}[kind]
        write_file(os.path.join(self.log, "run"),
                   "#!/bin/sh\nexec %s\n" % logger, 0o755)
        self.proc = None
        self.seen = []

    def start(self):
        argv = {"runit": ["runsv", self.path], "s6": ["s6-svscan", self.scan]}
        err = open(os.path.join(os.path.dirname(self.scan), self.kind + ".err"), "ab")
        self.proc = subprocess.Popen(argv[self.kind], stdin=subprocess.DEVNULL,
                                     stdout=err, stderr=err, cwd="/",
                                     start_new_session=True)
        err.close()
        self.remember()

    def remember(self):
        if self.proc is not None and self.proc.poll() is None:
            known = {p for p, _ in self.seen}
            self.seen += [r for r in records_of([self.proc.pid] + descendants(self.proc.pid))
                          if r[0] not in known]

    def status_line(self):
        argv = {"runit": ["sv", "status", self.path], "s6": ["s6-svstat", self.path]}
        p = run(argv[self.kind], check=False, timeout=5)
        return (p.stdout + p.stderr).strip()

    def pid(self):
        line = self.status_line()
        pat = {"runit": r"^run: [^:]*: \(pid (\d+)\)", "s6": r"^up \(pid (\d+)\)"}
        m = re.search(pat[self.kind], line)
        return int(m.group(1)) if m else None

    def restart(self):
        argv = {"runit": ["sv", "t", self.path], "s6": ["s6-svc", "-t", self.path]}
        run(argv[self.kind], timeout=5)

    def ready(self, old=None):
        """One look: the status pid (not old) when it is the only listener."""
        pid = self.pid()
        if pid is None or pid == old:
            return None
        ls = listeners(self.port)
        if ls == {pid}:
            return pid
        if ls and pid not in ls:
            raise Fail("listener pids %s, status pid %d" % (sorted(ls), pid))
        return None

    def start_on_port(self):
        """Write ./run with a candidate port and start; the front end binds
        the port itself, so a taken one means stop, a new port, start again
        (e2e.start_with_port).  Returns the listener's pid."""
        def configure(port):
            self.port = port
            write_file(os.path.join(self.path, "run"), run_file(port, self.config),
                       0o755)
        try:
            _, pid, _ = e2e.start_with_port(
                "%s service" % self.kind, configure, self.start,
                lambda port: self.ready(), lambda: read_text(self.current),
                self.stop)
        except Fail as e:
            raise Fail("%s; status: %r; log: %s" % (e, self.status_line(),
                                                     read_text(self.current)[-600:]))
        self.remember()
        return pid

    def wait_up(self, old=None):
        try:
            pid = wait_for(lambda: self.ready(old),
                           "%s: status pid == listener on %d" % (self.kind, self.port))
        except Fail as e:
            raise Fail("%s; status: %r; log: %s" % (e, self.status_line(),
                                                     read_text(self.current)[-600:]))
        self.remember()
        return pid

    def stop(self):
        self.remember()
        if self.proc is None:
            return
        if self.kind == "runit":
            run(["sv", "-w", "5", "force-stop", self.path], check=False, timeout=10)
            run(["sv", "exit", self.path], check=False, timeout=5)
            run(["sv", "exit", self.log], check=False, timeout=5)
        else:
            run(["s6-svscanctl", "-t", self.scan], check=False, timeout=5)
        try:
            self.proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            pass
        end_processes(self.seen, grace=3)


class Direct:
    """`courier-run ./run` run by us (no supervisor): it execs the front
    end, so our child's pid is the listener's."""

    def __init__(self, sd):
        self.sd, self.proc, self.seen = sd, None, []
        self.out = os.path.join(sd, "out.log")

    def launch(self):
        out = open(self.out, "ab")
        self.proc = subprocess.Popen([W.courier_run_path(), "./run"], cwd=self.sd,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     start_new_session=True)
        out.close()
        self.seen = records_of([self.proc.pid])

    def up(self, port):
        if self.proc.poll() is not None:
            raise Fail("courier-run exited %d: %s" % (
                self.proc.returncode, read_text(self.out)))
        return listeners(port) == {self.proc.pid}

    def start(self, config, server, first=None):
        """Write ./run with a candidate port (or `first`) and run it; the
        front end binds the port itself, so a taken one means stop, a new
        port, run again (e2e.start_with_port).  Returns the port."""
        def configure(port):
            write_file(os.path.join(self.sd, "run"), run_file(port, config, server),
                       0o755)
        try:
            port, _, _ = e2e.start_with_port(
                "courier-run ./run (%s)" % server, configure, self.launch, self.up,
                lambda: read_text(self.out), self.stop, first=first)
        except Fail as e:
            raise Fail("%s; output: %s" % (e, read_text(self.out)[-800:]))
        self.seen = records_of([self.proc.pid])
        return port

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.seen += records_of([self.proc.pid] + descendants(self.proc.pid))
        end_processes(self.seen, grace=3)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass


def config_copy(path, extra=""):
    """A copy of Debian's imapd whose IMAPACCESSFILE is the test's own
    (PATH.access, every client allowed): layout=debian runs couriertcpd,
    which builds IMAPACCESSFILE.dat, and the machine's is not ours."""
    access = path + ".access"
    write_file(access, "*\tallow\n")
    text = read_text(e2e.DEBIAN_IMAPD_CONFIG)
    write_file(path, text.rstrip("\n") + "\nIMAPACCESSFILE=%s\n" % access + extra)


def run_file(port, config, server=None):
    s = ("#!%s\n# courier-imapd (test)\nlayout=debian\naddress=%s\nport=%d\n"
         "config=%s\n" % (W.courier_run_path(), HOST, port, config))
    if server:
        s += 'server="%s"\n' % server
    return s


def login(port):
    # authdaemond sometimes answers the very first LOGIN after its start
    # with "Temporary problem": that is not what is tested here, so retry
    # that one answer (bounded).
    for attempt in range(4):
        c = imaplib.IMAP4(HOST, port, timeout=15)
        try:
            c.login(W.user, W.password)
            return c
        except imaplib.IMAP4.error as e:
            c.shutdown()
            if "Temporary problem" not in str(e) or attempt == 3:
                raise
            time.sleep(1)


def capability(port):
    c = login(port)
    try:
        typ, data = c.capability()
        return b" ".join(d for d in data if d).decode(errors="replace")
    finally:
        c.logout()


def supervisor_steps(kind):
    base = os.path.join(W.tmp, kind)
    os.makedirs(base)
    cfg = os.path.join(base, "imapd")
    config_copy(cfg)
    sup = Sup(kind, base, cfg)
    W.cleanups.append(sup.stop)
    pid = sup.start_on_port()
    port = sup.port
    STATUS_LINES.append("%s: %s (listener pid %d)" % (kind, sup.status_line(), pid))
    # an edited access list applied with no restart (couriertcpd, the
    # front end of layout=debian): makedat, then the supervisor's own HUP
    if refused(port, "127.0.0.2"):
        raise Fail("precondition: 127.0.0.2 refused before the deny line")
    with open(cfg + ".access", "a") as f:
        f.write("127.0.0.2\tdeny\n")
    p = subprocess.run([W.courier_run_path(), "./run", "--rebuild-access"],
                       cwd=sup.path, capture_output=True, text=True, timeout=15)
    want = {"runit": "sv hup", "s6": "s6-svc -h"}[kind]
    if p.returncode != 0 or want not in p.stdout:
        raise Fail("--rebuild-access: exit %d: %s%s" % (p.returncode, p.stdout,
                                                       p.stderr))
    wait_for(lambda: refused(port, "127.0.0.2") or None,
             "127.0.0.2 refused after --rebuild-access", timeout=5)
    if refused(port) or sup.pid() != pid:
        raise Fail("after the HUP: 127.0.0.1 refused, or pid %s (was %d)"
                   % (sup.pid(), pid))
    STATUS_LINES.append("%s --rebuild-access: %s; pid %d unchanged" % (
        kind, p.stdout.strip().splitlines()[-1], pid))
    # a config change plus a restart shows up in CAPABILITY
    text = read_text(cfg)
    new, n = re.subn(r'^IMAP_CAPABILITY="([^"]*)"', r'IMAP_CAPABILITY="\1 %s"' % CAP_TOKEN,
                     text, flags=re.M)
    if n != 1:
        raise Fail("cannot edit IMAP_CAPABILITY in %s" % cfg)
    if CAP_TOKEN in capability(port).split():
        raise Fail("precondition: %s already in CAPABILITY" % CAP_TOKEN)
    write_file(cfg, new)
    sup.restart()
    pid2 = sup.wait_up(old=pid)
    cap = capability(port)
    if CAP_TOKEN not in cap.split():
        raise Fail("after the change and restart, CAPABILITY is %s" % cap)
    # a broken config: the message reaches this supervisor's log
    lines = len(new.splitlines())
    write_file(cfg, new.rstrip("\n") + "\nFOO=$(ls)\n")
    fatal = re.compile(r"courier-run: fatal: \S*imapd:%d:\d+" % (lines + 1))
    sup.restart()
    try:
        wait_for(lambda: fatal.search(read_text(sup.current)),
                 "courier-run: fatal: ...imapd:%d:COL in %s" % (lines + 1, sup.current))
    except Fail as e:
        raise Fail("%s; log tail: %s; status %r" % (e, read_text(sup.current)[-600:],
                                                  sup.status_line()))
    STATUS_LINES.append("%s, broken config: %s" % (kind, sup.status_line()))
    write_file(cfg, new)
    sup.wait_up(old=pid2)
    sup.stop()


def tcpsvd_maxperip():
    sd = os.path.join(W.tmp, "maxperip")
    os.makedirs(sd)
    cfg = os.path.join(sd, "imapd")
    config_copy(cfg, "MAXPERIP=2\n")
    d = Direct(sd)
    W.cleanups.append(d.stop)
    port = d.start(cfg, "tcpsvd -v")
    held = []
    try:
        for i in (1, 2):
            s, data = greeting(port)
            held.append(s)
            if not data.startswith(b"* OK"):
                raise Fail("connection %d got %r, not a greeting" % (i, data))
        if not refused(port):
            raise Fail("a third connection from 127.0.0.1 got a greeting (MAXPERIP=2)")
    finally:
        for s in held:
            s.close()
    # once the two are gone, a new one is served again
    wait_for(lambda: not refused(port), "a greeting after the two closed")
    d.stop()


def access_steps(server):
    tag = server.split()[0]
    sd = os.path.join(W.tmp, "access-" + tag)
    os.makedirs(sd)
    acc = os.path.join(sd, "imapaccess")
    write_file(acc, "# test\n127.0.0.1\tallow,%s=%s,RELAYCLIENT\n"
                    "127.0.0.2\tdeny\n*\tallow\n" % (ACCESS_VAR, ACCESS_VALUE))
    cfg = os.path.join(sd, "imapd")
    config_copy(cfg, "IMAPACCESSFILE=%s\nMAXPERIP=0\n" % acc)
    d = Direct(sd)
    W.cleanups.append(d.stop)
    port = d.start(cfg, server)
    if not refused(port, source="127.0.0.2"):
        raise Fail("127.0.0.2 (deny) got a greeting")
    c = login(port)
    try:
        def imapd_env():
            for pid in descendants(d.proc.pid):
                env = proc_environ(pid)
                if "AUTHENTICATED" in env or env.get(ACCESS_VAR):
                    return env
            return None
        env = wait_for(imapd_env, "a per-connection imapd under %s" % tag)
        if env.get(ACCESS_VAR) != ACCESS_VALUE:
            raise Fail("imapd's %s = %r" % (ACCESS_VAR, env.get(ACCESS_VAR)))
        if "RELAYCLIENT" not in env:
            raise Fail("imapd has no RELAYCLIENT (allow,NAME sets it empty)")
    finally:
        c.logout()
    d.stop()
    # a list that denies 127.0.0.1: rebuilt (the source is newer) and enforced
    time.sleep(0.05)
    write_file(acc, "127.0.0.1\tdeny\n")
    d2 = Direct(sd)
    W.cleanups.append(d2.stop)
    # the port d just released, most likely still free; if not, a new one
    port = d2.start(cfg, server, first=port)
    if not refused(port):
        raise Fail("127.0.0.1 got a greeting from %s although the list denies it" % tag)
    d2.stop()


W = None


def main():
    global W
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
    missing = [p for p in ("runsv", "sv", "svlogd", "s6-svscan", "s6-svstat", "s6-svc",
                           "s6-log", "tcpsvd", "tcpserver", "maildirmake", "authtest")
               if not __import__("shutil").which(p)]
    if os.geteuid() != 0 or missing:
        print("FAIL setup: needs root and %s" % (missing or "nothing else"))
        print("0 passed, 1 failed")
        return 1
    W = e2e.World(args)
    W.tmp_keep = args.keep
    steps = [("setup", W.setup),
             ("runit", lambda: supervisor_steps("runit")),
             ("s6", lambda: supervisor_steps("s6")),
             ("tcpsvd-maxperip", tcpsvd_maxperip),
             ("access-tcpserver", lambda: access_steps("tcpserver -v -RH -l0")),
             ("access-tcpsvd", lambda: access_steps("tcpsvd -v"))]
    only = set(filter(None, args.only.split(",")))
    t0 = time.monotonic()
    # Every step needs the setup; --only picks some (the setup always runs).
    run = [(name, fn, [] if name == "setup" else ["setup"], None)
           for name, fn in steps
           if not only or name in only or name == "setup"]

    def status_lines():
        for line in STATUS_LINES:
            print("# " + line)
    return e2e.run_steps(run, W.teardown, t0, status_lines)


if __name__ == "__main__":
    sys.exit(main())
