#!/usr/bin/env python3
"""End-to-end test of courier-run: a real Courier-IMAP service under daemontools.

    python3 tests/e2e/e2e.py [--courier-run PATH] [--keep] [-v]

Needs root, loopback only, and the Debian 12 packages daemontools, ucspi-tcp,
courier-imap and courier-authdaemon.  Standard library only.

What it does: creates a throwaway Unix user with a password and
a Maildir of 3 messages, makes sure authdaemond runs, builds a service
directory in a temporary folder whose `run` is a courier-run script
(layout=debian, 127.0.0.1, a candidate port, a copy of /etc/courier/imapd) with a
multilog `log/run`, runs real `supervise` on both (a pipe between them, like
svscan does), and checks, each as a named step:

  setup                user, Maildir, authdaemond (authtest succeeds)
  service-up           supervise starts run, something listens on the port
  imap-session         imaplib: greeting, LOGIN, SELECT INBOX (EXISTS 3),
                       FETCH subjects, LOGOUT
  imap-wrong-password  LOGIN with a wrong password is refused
  process-truth        svstat pid == listener pid == tcpserver, child of supervise
  log                  log/main/current: multilog timestamps, `*** ` banner,
                       tcpserver `status:` and ` ok ` lines
  restart-unchanged    svc -t restarts; an unchanged config leaves the envdir
                       alone (same inode and mtime of env and of its files)
  config-change        edited config (one value changed, one removed, one
                       added) + svc -t: envdir, tcpserver's environment and
                       the client's CAPABILITY show it
  bad-config           a syntax error: no listener, `courier-run: fatal:
                       FILE:LINE:COL` in the log, envdir intact
  recovery             fixed config: back up on supervise's next retry,
                       nobody touches it
  courier2-chain       layout=courier2 with a fake prefix of recorder scripts:
                       imaplogin authpwd authcram imapd Maildir, config env seen
  port-retry           the port rule: tcpserver and tcpsvd on a port
                       we hold say what BIND_TAKEN matches; a service whose
                       first port is one we hold is stopped and comes up on a
                       new port (2 attempts)

Ports: the front end binds its port itself, so no socket can be kept for it;
candidate_port() names a port that was free, and start_with_port() retries
(at most 5 times) when the front end logs `unable to bind...: address already
used`: it stops the service, rewrites the run file (or the config's
PORT/SSLPORT lines) with a new candidate and starts it again.  services.py
and supervisors.py use the same helper.

Everything is torn down in a `finally` (processes by pid, userdel -r) even on
failure.  Every wait is bounded.  Output: `ok STEP [time]` or
`FAIL STEP: reason` plus the log tail, then the wall time, and last a line
`N passed, M failed`; the exit code is 1 when anything failed.

`--standin` (hidden, for developing this harness) replaces courier-run with a
plain /bin/sh run script (the classic recipe plus a small converter).
"""

import argparse
import imaplib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

DEADLINE = 15.0          # seconds, for every wait on something to happen
IMAP_TIMEOUT = 15.0      # socket timeout of every IMAP connection
HOST = "127.0.0.1"

DEBIAN_IMAPD_CONFIG = "/etc/courier/imapd"
AUTHDAEMONRC = "/etc/courier/authdaemonrc"
AUTHDAEMOND = "/usr/lib/courier/courier-authlib/authdaemond"   # the real daemon
AUTHDAEMON_DIR = "/run/courier/authdaemon"
AUTHDAEMON_SOCKET = AUTHDAEMON_DIR + "/socket"
IMAPLOGIN = "/usr/lib/courier/courier/imaplogin"
IMAPD = "/usr/bin/imapd"

CAP_TOKEN = "XCOURIERRUN"
REMOVED_VAR = "IMAP_OBSOLETE_CLIENT"
ADDED_VAR, ADDED_VALUE = "CRTEST_ADDED", "added by e2e"

VERBOSE = False


class Fail(Exception):
    """A check failed; the message is the reason."""


def note(msg):
    if VERBOSE:
        print("  . " + msg, flush=True)


# --------------------------------------------------------------------------
# small helpers

def run(argv, check=True, timeout=DEADLINE, input=None):
    """Run a command, bounded; return CompletedProcess (text)."""
    try:
        p = subprocess.run(argv, input=input, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Fail("%s: timed out after %ss" % (" ".join(argv), timeout))
    except OSError as e:
        raise Fail("%s: %s" % (argv[0], e))
    if check and p.returncode != 0:
        raise Fail("%s: exit %d: %s" % (" ".join(argv), p.returncode,
                                        (p.stderr + p.stdout).strip()))
    return p


def wait_for(pred, what, timeout=DEADLINE, interval=0.1):
    """Poll pred() until it returns something true; return it.  Bounded."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Fail as e:
            last_exc = e
        if time.monotonic() >= deadline:
            raise Fail("timed out after %gs waiting for %s%s" % (
                timeout, what, (" (last: %s)" % last_exc) if last_exc else ""))
        time.sleep(interval)


def candidate_port():
    """A port the kernel called free a moment ago: bind port 0, read the
    number, close.  This is NOT a reservation: the front end (tcpserver,
    tcpsvd) must bind the port itself, so the harness cannot keep the
    socket, and anything on the machine may take the port in between.
    Only start_with_port() makes it safe: when the front end finds the port
    taken, the service is stopped and started again on a new candidate
    (bind port 0 and keep the socket, or retry on EADDRINUSE)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


# what tcpserver (`unable to bind: address already used`) and tcpsvd
# (`unable to bind socket: address already used`) say on EADDRINUSE
# and couriertcpd (`bind: Address already in use`, then exit 1)
BIND_TAKEN = re.compile(r"\b(tcpserver|tcpsvd): fatal: unable to bind[^\n:]*: "
                        r"address already used|\bbind: Address already in use")
PORT_ATTEMPTS = 5


class PortTaken(Exception):
    """The front end could not bind its port: someone else holds it."""


def start_with_port(what, configure, start, ready, log_text, stop,
                    first=None, attempts=PORT_ATTEMPTS):
    """Start a service whose front end binds its port itself, retrying on
    EADDRINUSE; return (port, what ready() returned, attempts used).

      configure(port)  write what names the port (run file, config lines);
                       called again with a new port on a retry
      start()          start the service (its supervisor, or the run file)
      ready(port)      one poll: something true once it listens, else None
                       (a Fail it raises is the reason shown on a timeout)
      log_text()       the service's log so far, where the front end's
                       `fatal: unable to bind...: address already used` lands
      stop()           stop the service cleanly (called after a taken port)
      first            the port of the first attempt (default: a candidate)

    A taken port is seen in the log lines written since this attempt's
    start, on the first poll after the front end said so (the supervisor
    would restart it every second, on the same taken port): the service is
    stopped, configured with a new candidate_port() and started again, at
    most `attempts` times; then Fail names every port tried."""
    tried = []
    for i in range(attempts):
        port = first if (i == 0 and first is not None) else candidate_port()
        tried.append(port)
        configure(port)
        mark = len(log_text())
        start()

        def poll():
            if BIND_TAKEN.search(log_text()[mark:]):
                raise PortTaken(port)
            return ready(port)
        try:
            got = wait_for(poll, "%s listening on %s:%d" % (what, HOST, port))
            return port, got, i + 1
        except PortTaken:
            note("%s: port %d taken (attempt %d of %d); stopping, next port"
                 % (what, port, i + 1, attempts))
            stop()
    raise Fail("%s: the front end found its port taken on each of %d attempts"
               " (ports %s)" % (what, attempts, ", ".join(map(str, tried))))


def read_text(path, default=""):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()
    except OSError:
        return default


def tail(path, n=25):
    lines = read_text(path).splitlines()
    return lines[-n:]


def write_file(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


# --------------------------------------------------------------------------
# /proc

def proc_stat_fields(pid):
    """(comm, state, ppid, starttime) or None when gone."""
    s = read_text("/proc/%d/stat" % pid, None)
    if not s:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    # rest[0] = state (field 3), rest[1] = ppid (4), rest[19] = starttime (22)
    return comm, rest[0], int(rest[1]), int(rest[19])


def alive(pid):
    f = proc_stat_fields(pid)
    return f is not None and f[1] != "Z"


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def children(pid):
    out = []
    for p in all_pids():
        f = proc_stat_fields(p)
        if f and f[2] == pid:
            out.append(p)
    return out


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        c = children(todo.pop())
        out += c
        todo += c
    return out


def proc_exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError as e:
        return "?(%s)" % e.strerror


def proc_environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Fail("cannot read /proc/%d/environ: %s" % (pid, e))
    env = {}
    for item in data.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            env[k.decode(errors="replace")] = v.decode(errors="replace")
    return env


def listeners(port):
    """pids of processes holding a LISTEN socket on 127.0.0.1:port or *:port."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in read_text(table).splitlines()[1:]:
            f = line.split()
            if len(f) < 10 or f[3] != "0A":
                continue
            addr, p = f[1].split(":")
            if int(p, 16) != port:
                continue
            if addr not in ("0100007F", "00000000", "0" * 32,
                            "0000000000000000FFFF00000100007F"):
                continue
            inodes.add(f[9])
    if not inodes:
        return set()
    wanted = {"socket:[%s]" % i for i in inodes}
    pids = set()
    for pid in all_pids():
        fddir = "/proc/%d/fd" % pid
        try:
            fds = os.listdir(fddir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fddir + "/" + fd) in wanted:
                    pids.add(pid)
                    break
            except OSError:
                pass
    return pids


def kill_pids(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def end_processes(records, grace=5.0):
    """records: [(pid, starttime)]. TERM+CONT, wait, then KILL; by pid only,
    and only if it is still the same process (same start time)."""
    def same(pid, st):
        f = proc_stat_fields(pid)
        return f is not None and f[3] == st and f[1] != "Z"
    live = [(p, s) for p, s in records if same(p, s)]
    if not live:
        return
    kill_pids([p for p, _ in live], signal.SIGTERM)
    kill_pids([p for p, _ in live], signal.SIGCONT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        live = [(p, s) for p, s in live if same(p, s)]
        if not live:
            return
        time.sleep(0.1)
    kill_pids([p for p, _ in live], signal.SIGKILL)


def records_of(pids):
    out = []
    for p in pids:
        f = proc_stat_fields(p)
        if f:
            out.append((p, f[3]))
    return out


# --------------------------------------------------------------------------
# daemontools

SVSTAT_RE = re.compile(r": (up|down)(?: \(pid (\d+)\))?")


def svstat(path):
    """('up', pid) / ('down', None) / ('unknown', text)."""
    p = run(["svstat", path], check=False, timeout=5)
    out = p.stdout.strip()
    m = SVSTAT_RE.search(out)
    if not m:
        return ("unknown", out or p.stderr.strip())
    return (m.group(1), int(m.group(2)) if m.group(2) else None)


class Service:
    """A service dir with a log/ subdir, run by two `supervise` processes
    joined by a pipe (what svscan does), so that we own their pids."""

    def __init__(self, path, errfile):
        self.path = path
        self.log = os.path.join(path, "log")
        self.current = os.path.join(self.log, "main", "current")
        self.errfile = errfile
        self.sup = self.logsup = None
        self.seen = []           # (pid, starttime) of every pid we saw

    def start(self):
        r, w = os.pipe()
        err = open(self.errfile, "ab")
        try:
            self.logsup = subprocess.Popen(
                ["supervise", self.log], stdin=r, stdout=err, stderr=err,
                cwd="/", start_new_session=True)
            self.sup = subprocess.Popen(
                ["supervise", self.path], stdin=subprocess.DEVNULL, stdout=w,
                stderr=err, cwd="/", start_new_session=True)
        finally:
            os.close(r)
            os.close(w)
            err.close()
        self.remember()

    def remember(self):
        pids = []
        for s in (self.sup, self.logsup):
            if s is not None and s.poll() is None:
                pids += [s.pid] + descendants(s.pid)
        known = {p for p, _ in self.seen}
        self.seen += [r for r in records_of(pids) if r[0] not in known]

    def status(self):
        return svstat(self.path)

    def svc(self, *flags):
        run(["svc"] + list(flags) + [self.path], timeout=5)

    def stop(self):
        stop_services([self])

    def stop_for_retry(self):
        """After its front end found the port taken (its log said so)."""
        stop_services([self], together=True)

    def log_text(self):
        return read_text(self.current)


def stop_services(services, together=False):
    """svc -dx every service, then (once they are gone, so that multilog
    has all of their output) every log; wait, bounded; then end by pid
    whatever we ever saw of theirs that is still running.  together: the
    logs at once too (faster by supervise's 1 s restart pause of a multilog
    that saw its end of input; the last lines of the service may be lost)."""
    for s in services:
        s.remember()
    phases = [("path", "log")] if together else [("path",), ("log",)]
    for phase in phases:
        procs = []
        for s in services:
            for which in phase:
                path, proc = ((s.path, s.sup) if which == "path"
                              else (s.log, s.logsup))
                if proc is not None and proc.poll() is None:
                    run(["svc", "-dx", path], check=False, timeout=5)
                    procs.append(proc)
        deadline = time.monotonic() + 5
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    for s in services:
        end_processes(s.seen)
    for s in services:
        for proc in (s.sup, s.logsup):
            if proc is not None:
                try:
                    proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass


def up_poll(svc, port, old_pid=None):
    """One look: supervise's pid (other than old_pid) when it is `up` and
    that pid is the one and only listener on the port, else None."""
    st, pid = svc.status()
    if st != "up" or pid is None or pid == old_pid:
        return None
    ls = listeners(port)
    if ls == {pid}:
        return pid
    if ls and pid not in ls:
        raise Fail("listener pids %s, svstat pid %d" % (sorted(ls), pid))
    return None


def wait_up(svc, port, old_pid=None, timeout=DEADLINE):
    """Wait until up_poll() has the pid; return it."""
    pid = wait_for(lambda: up_poll(svc, port, old_pid),
                   "supervise `up` with its pid listening on %s:%d"
                   % (HOST, port), timeout=timeout)
    svc.remember()
    return pid


def start_service(svc, what, configure, first=None):
    """start_with_port() for a Service under supervise: (port, pid)."""
    port, pid, _ = start_with_port(
        what, configure, svc.start, lambda p: up_poll(svc, p), svc.log_text,
        svc.stop_for_retry, first=first)
    svc.remember()
    return port, pid


# --------------------------------------------------------------------------
# envdir snapshots

def env_snapshot(envdir):
    """{'.': (ino, mtime_ns), NAME: (ino, mtime_ns, bytes)}."""
    try:
        st = os.lstat(envdir)
    except OSError as e:
        raise Fail("envdir %s: %s" % (envdir, e.strerror))
    if not stat.S_ISDIR(st.st_mode):
        raise Fail("envdir %s is not a directory" % envdir)
    snap = {".": (st.st_ino, st.st_mtime_ns)}
    for name in sorted(os.listdir(envdir)):
        p = os.path.join(envdir, name)
        s = os.lstat(p)
        data = b""
        if stat.S_ISREG(s.st_mode):
            with open(p, "rb") as f:
                data = f.read()
        snap[name] = (s.st_ino, s.st_mtime_ns, data)
    return snap


def env_value(envdir, name):
    """envdir's view of one file: None if absent/unset, else the value."""
    p = os.path.join(envdir, name)
    try:
        with open(p, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    if not data:
        return None
    first = data.split(b"\n", 1)[0].rstrip(b" \t").replace(b"\0", b"\n")
    return first.decode(errors="replace")


def diff_snap(a, b, content_only=False):
    out = []
    for k in sorted(set(a) | set(b)):
        if k not in a:
            out.append("%s appeared" % k)
        elif k not in b:
            out.append("%s vanished" % k)
        elif content_only:
            if k != "." and a[k][2] != b[k][2]:
                out.append("%s content %r -> %r" % (k, a[k][2], b[k][2]))
        elif a[k] != b[k]:
            what = []
            if a[k][0] != b[k][0]:
                what.append("inode %d -> %d" % (a[k][0], b[k][0]))
            if a[k][1] != b[k][1]:
                what.append("mtime %d -> %d" % (a[k][1], b[k][1]))
            if k != "." and a[k][2] != b[k][2]:
                what.append("content changed")
            out.append("%s: %s" % ("env" if k == "." else k, ", ".join(what)))
    return out


# --------------------------------------------------------------------------
# the checks

class World:
    """Everything the checks share; teardown() undoes all of it."""

    def __init__(self, args):
        self.args = args
        self.courier_run = args.courier_run
        self.tmp = tempfile.mkdtemp(prefix="crtest-e2e-")
        os.chmod(self.tmp, 0o755)
        self.cleanups = []          # callables, run in reverse order
        self.user = "crtest%d" % os.getpid()
        self.password = "pw-" + secrets.token_hex(8)
        self.subjects = []
        self.svc = None
        self.port = None
        self.pid = None
        self.config = os.path.join(self.tmp, "etc", "imapd")
        self.envdir = None
        self.good_config = None
        self.wrongpw = None
        self.c2svc = None
        self.services = []

    def add_service(self, svc):
        if not self.services:
            self.cleanups.append(self.stop_services)
        self.services.append(svc)

    def stop_services(self):
        stop_services(self.services)

    def teardown(self):
        errs = []
        for fn in reversed(self.cleanups):
            t0 = time.monotonic()
            try:
                fn()
            except Exception as e:          # keep tearing down
                errs.append("%s: %s" % (getattr(fn, "__name__", fn), e))
            note("teardown %s: %.2fs" % (getattr(fn, "__qualname__", fn),
                                         time.monotonic() - t0))
        if self.args.keep:
            print("kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return errs

    # ---- step 1 -------------------------------------------------------------

    def setup(self):
        # the user
        run(["useradd", "-m", "-s", "/bin/sh", "-c", "courier-run e2e test",
             self.user])
        self.cleanups.append(self.remove_user)
        run(["chpasswd"], input="%s:%s\n" % (self.user, self.password))
        pw = pwd.getpwnam(self.user)
        self.uid, self.gid, self.home = pw.pw_uid, pw.pw_gid, pw.pw_dir
        # the Maildir, 3 messages with distinct subjects, owned by the user
        md = os.path.join(self.home, "Maildir")
        run(["maildirmake", md])
        now = int(time.time())
        for i, word in enumerate(("one", "two", "three"), 1):
            subj = "crtest message %s %s" % (word, secrets.token_hex(3))
            self.subjects.append(subj)
            name = "%d.M%dP%d.crtest" % (now, i, os.getpid())
            write_file(os.path.join(md, "new", name),
                       "From: e2e <e2e@example.invalid>\n"
                       "To: %s@example.invalid\n"
                       "Subject: %s\n"
                       "Date: Thu, 01 Jan 2004 00:00:0%d +0000\n"
                       "Message-ID: <%d.%d@crtest>\n"
                       "\n"
                       "body of message %d\n" % (self.user, subj, i, now, i, i),
                       mode=0o600)
        for root, dirs, files in os.walk(md):
            for n in dirs + files + ["."]:
                os.lchown(os.path.join(root, n), self.uid, self.gid)
        os.lchown(md, self.uid, self.gid)
        # authdaemond
        self.ensure_authdaemond()
        p = run(["authtest", "-s", "imap", self.user, self.password],
                check=False)
        if p.returncode != 0:
            raise Fail("authtest -s imap %s: exit %d: %s" % (
                self.user, p.returncode, (p.stdout + p.stderr).strip()))

    def remove_user(self):
        try:
            pw = pwd.getpwnam(self.user)
        except KeyError:
            return
        # processes still running as the user (e.g. an imapd of an aborted
        # session) would make userdel refuse: end them, by pid
        mine = []
        for pid in all_pids():
            for line in read_text("/proc/%d/status" % pid).splitlines():
                if line.startswith("Uid:"):
                    if int(line.split()[1]) == pw.pw_uid:
                        mine.append(pid)
                    break
        end_processes(records_of(mine), grace=3)
        p = run(["userdel", "-r", self.user], check=False)
        try:
            pwd.getpwnam(self.user)
            raise Fail("userdel -r %s failed: %s" % (self.user, p.stderr.strip()))
        except KeyError:
            pass
        if os.path.exists(pw.pw_dir):
            shutil.rmtree(pw.pw_dir, ignore_errors=True)

    @staticmethod
    def authdaemon_answers():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(AUTHDAEMON_SOCKET)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def ensure_authdaemond(self):
        if self.authdaemon_answers():
            note("authdaemond already running; using it")
            return
        # what Debian's tmpfiles.d/courier-authdaemon.conf and
        # /usr/sbin/authdaemond do, minus courierlogger's daemonizing: run the
        # daemon in the foreground so that we own its pid
        if not os.path.isdir(AUTHDAEMON_DIR):
            os.makedirs(AUTHDAEMON_DIR, exist_ok=True)
            cp = pwd.getpwnam("courier")
            os.chown(os.path.dirname(AUTHDAEMON_DIR), 0, cp.pw_gid)
            os.chmod(os.path.dirname(AUTHDAEMON_DIR), 0o775)
            os.chown(AUTHDAEMON_DIR, cp.pw_uid, cp.pw_gid)
            os.chmod(AUTHDAEMON_DIR, 0o750)
        sock_existed = os.path.lexists(AUTHDAEMON_SOCKET)
        logf = open(os.path.join(self.tmp, "authdaemond.log"), "ab")
        proc = subprocess.Popen(
            ["/bin/sh", "-c", 'set -a; . "$1"; exec "$2"', "sh",
             AUTHDAEMONRC, AUTHDAEMOND],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, cwd="/",
            start_new_session=True)
        logf.close()

        def stop_authdaemond():
            recs = records_of([proc.pid] + descendants(proc.pid))
            # the master stops its children on TERM
            end_processes(recs[:1], grace=5)
            end_processes(recs[1:], grace=2)
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            if not sock_existed:
                try:
                    os.unlink(AUTHDAEMON_SOCKET)
                except OSError:
                    pass
        self.cleanups.append(stop_authdaemond)
        note("started authdaemond pid %d" % proc.pid)
        try:
            wait_for(lambda: proc.poll() is not None or self.authdaemon_answers(),
                     "authdaemond's socket %s" % AUTHDAEMON_SOCKET)
        except Fail:
            pass
        if proc.poll() is not None or not self.authdaemon_answers():
            raise Fail("authdaemond did not come up (exit %s): %s" % (
                proc.poll(), read_text(os.path.join(self.tmp, "authdaemond.log"))))

    # ---- step 2 -------------------------------------------------------------

    def courier_run_path(self):
        p = os.path.abspath(self.courier_run)
        if not (os.path.isfile(p) and os.access(p, os.X_OK)):
            raise Fail("courier-run binary %s is missing or not executable "
                       "(cargo build first, or pass --courier-run)" % p)
        if re.search(r"\s", p) or len(p) > 200:
            raise Fail("courier-run path %r cannot be a #! interpreter "
                       "(blank in it or too long)" % p)
        return p

    def service_up(self):
        os.makedirs(os.path.dirname(self.config))
        shutil.copyfile(DEBIAN_IMAPD_CONFIG, self.config)
        sd = os.path.join(self.tmp, "service")
        self.envdir = os.path.join(sd, "env")
        self.svc = self.debian_service(sd, self.config)
        self.port, self.pid = start_service(
            self.svc, "the service", self.debian_run(sd, self.config))
        note("service up, pid %d, port %d" % (self.pid, self.port))

    def debian_service(self, sd, config):
        """A Service in sd (with a multilog log/run), not started yet."""
        os.makedirs(os.path.join(sd, "log"))
        write_file(os.path.join(sd, "log", "run"),
                   "#!/bin/sh\nexec multilog t ./main\n", 0o755)
        svc = Service(sd, os.path.join(os.path.dirname(sd),
                                       os.path.basename(sd) + "-supervise.err"))
        self.add_service(svc)
        return svc

    def debian_run(self, sd, config):
        """configure(port) for start_service(): sd/run, layout=debian."""
        def configure(port):
            if self.args.standin:
                script = standin_debian(config, port)
            else:
                script = ("#!%s\n"
                          "# courier-imapd: Courier-IMAP on tcpserver under "
                          "supervise (courier-run e2e)\n"
                          "layout=debian\n"
                          # these steps check tcpserver (its log lines,
                          # its pid); Debian's default is couriertcpd
                          'server="tcpserver -v -RH -l0"\n'
                          "address=%s\n"
                          "port=%d\n"
                          "config=%s\n" % (self.courier_run_path(), HOST,
                                           port, config))
            write_file(os.path.join(sd, "run"), script, 0o755)
        return configure

    def main_log(self):
        out = []
        if self.svc:
            out += ["svstat: %s %s; listeners on port %s: %s" % (
                self.svc.status() + (self.port, sorted(listeners(self.port))
                                     or "none"))]
            out += ["service log %s (last lines):" % self.svc.current]
            out += ["  | " + l for l in tail(self.svc.current)]
            err = read_text(self.svc.errfile).strip()
            if err:
                out += ["supervise stderr:"] + ["  | " + l for l in err.splitlines()[-10:]]
        return out

    # ---- step 3 -------------------------------------------------------------

    def imap_connect(self):
        try:
            return imaplib.IMAP4(HOST, self.port, timeout=IMAP_TIMEOUT)
        except (OSError, imaplib.IMAP4.error) as e:
            raise Fail("connect to %s:%d: %r" % (HOST, self.port, e))

    def start_wrong_password(self):
        # Courier answers a failed LOGIN only after ~7 s; do it concurrently
        res = {}

        def attempt():
            t0 = time.monotonic()
            try:
                c = imaplib.IMAP4(HOST, self.port, timeout=IMAP_TIMEOUT)
                try:
                    c.login(self.user, self.password + "-wrong")
                    res["result"] = "accepted"
                    c.logout()
                except imaplib.IMAP4.error as e:
                    res["result"] = "refused"
                    res["detail"] = str(e)
                    try:
                        c.logout()
                    except Exception:
                        pass
            except Exception as e:
                res["result"] = "error"
                res["detail"] = repr(e)
            res["seconds"] = time.monotonic() - t0
        t = threading.Thread(target=attempt, daemon=True)
        t.start()
        self.wrongpw = (t, res)

    def imap_session(self):
        self.start_wrong_password()
        c = self.imap_connect()
        try:
            if not c.welcome.startswith(b"* OK"):
                raise Fail("greeting: %r" % c.welcome)
            note("greeting: %s" % c.welcome.decode(errors="replace")[:100])
            try:
                typ, data = c.login(self.user, self.password)
            except imaplib.IMAP4.error as e:
                raise Fail("LOGIN refused: %s" % e)
            typ, data = c.select("INBOX")
            if typ != "OK":
                raise Fail("SELECT INBOX: %s %r" % (typ, data))
            exists = int(data[0])
            if exists != 3:
                raise Fail("SELECT INBOX: EXISTS %d, want 3" % exists)
            typ, data = c.fetch("1:3", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            if typ != "OK":
                raise Fail("FETCH: %s %r" % (typ, data))
            got = []
            for item in data:
                if isinstance(item, tuple):
                    m = re.search(rb"Subject: ([^\r\n]*)", item[1])
                    got.append(m.group(1).decode() if m else repr(item[1]))
            if sorted(got) != sorted(self.subjects):
                raise Fail("FETCH subjects %r, want %r" % (got, self.subjects))
            typ, data = c.fetch("2", "(RFC822)")
            body = data[0][1] if data and isinstance(data[0], tuple) else b""
            if b"Subject: crtest message" not in body:
                raise Fail("FETCH 2 RFC822: no Subject in %r" % body[:200])
            typ, data = c.logout()
            if typ != "BYE":
                raise Fail("LOGOUT: %s %r" % (typ, data))
        except imaplib.IMAP4.error as e:
            raise Fail("IMAP error: %s" % e)
        except OSError as e:
            raise Fail("connection: %r" % e)
        finally:
            try:
                c.shutdown()
            except Exception:
                pass

    def imap_wrong_password(self):
        if not self.wrongpw:
            self.start_wrong_password()
        t, res = self.wrongpw
        t.join(IMAP_TIMEOUT + 5)
        if t.is_alive():
            raise Fail("the wrong-password LOGIN did not finish")
        if res.get("result") != "refused":
            raise Fail("wrong password: %s %s" % (res.get("result"),
                                                   res.get("detail", "")))
        note("wrong password refused after %.1fs: %s" % (
            res["seconds"], res.get("detail")))

    # ---- step 4 -------------------------------------------------------------

    def process_truth(self):
        st, pid = self.svc.status()
        if st != "up":
            raise Fail("svstat: %s %s" % (st, pid))
        ls = listeners(self.port)
        if ls != {pid}:
            raise Fail("svstat pid %d, listeners on port %d: %s" % (
                pid, self.port, sorted(ls) or "none"))
        exe = proc_exe(pid)
        comm = proc_stat_fields(pid)[0]
        tcpserver = os.path.realpath(shutil.which("tcpserver") or "tcpserver")
        if os.path.realpath(exe) != tcpserver or comm != "tcpserver":
            raise Fail("pid %d is %s (comm %s), not %s" % (pid, exe, comm,
                                                          tcpserver))
        ppid = proc_stat_fields(pid)[2]
        if ppid != self.svc.sup.pid:
            raise Fail("tcpserver pid %d has parent %d, supervise is %d" % (
                pid, ppid, self.svc.sup.pid))
        self.pid = pid

    # ---- step 7 -------------------------------------------------------------

    def log_check(self):
        want = [
            ("multilog t timestamps", re.compile(r"^@[0-9a-f]{24} ", re.M)),
            ("banner `*** `", re.compile(r"^@[0-9a-f]{24} \*\*\* ", re.M)),
            ("tcpserver `status:`", re.compile(r"tcpserver: status: \d+/\d+")),
            ("tcpserver ` ok `", re.compile(r"tcpserver: ok \d+ ")),
        ]

        def missing():
            text = self.svc.log_text()
            m = [name for name, rx in want if not rx.search(text)]
            if m:
                raise Fail("missing " + ", ".join(m))
            return True
        wait_for(missing, "the log lines")

    # ---- step 5 -------------------------------------------------------------

    def restart_unchanged(self):
        before = env_snapshot(self.envdir)
        old = self.svc.status()[1]
        time.sleep(0.05)       # so that a rewrite would show in mtime_ns
        self.svc.svc("-t")
        self.pid = wait_up(self.svc, self.port, old_pid=old)
        self.greeting_only()
        after = env_snapshot(self.envdir)
        d = diff_snap(before, after)
        if d:
            raise Fail("envdir rewritten with an unchanged config: " +
                       "; ".join(d[:8]))
        note("restarted: pid %d -> %d, envdir untouched (%d entries)" % (
            old, self.pid, len(after) - 1))

    def greeting_only(self):
        c = self.imap_connect()
        try:
            if not c.welcome.startswith(b"* OK"):
                raise Fail("greeting: %r" % c.welcome)
            c.logout()
        except (imaplib.IMAP4.error, OSError) as e:
            raise Fail("IMAP after restart: %r" % e)
        return c

    def config_change(self):
        text = read_text(self.config)
        lines = text.splitlines(True)
        out, changed, removed = [], False, False
        for line in lines:
            if re.match(r"IMAP_CAPABILITY=", line):
                m = re.match(r'IMAP_CAPABILITY="([^"]*)"\s*$', line)
                if not m:
                    raise Fail("cannot edit %r" % line)
                line = 'IMAP_CAPABILITY="%s %s"\n' % (m.group(1), CAP_TOKEN)
                changed = True
            elif re.match(REMOVED_VAR + "=", line):
                removed = True
                continue
            out.append(line)
        if not (changed and removed):
            raise Fail("config copy lacks IMAP_CAPABILITY= or %s=" % REMOVED_VAR)
        out.append('\n# added by the e2e test\n%s="%s"\n' % (ADDED_VAR,
                                                           ADDED_VALUE))
        if env_value(self.envdir, REMOVED_VAR) is None:
            raise Fail("precondition: env/%s not set before the edit" %
                       REMOVED_VAR)
        self.good_config = "".join(out)
        with open(self.config, "w") as f:
            f.write(self.good_config)
        old = self.svc.status()[1]
        self.svc.svc("-t")
        self.pid = wait_up(self.svc, self.port, old_pid=old)
        problems = []
        cap = env_value(self.envdir, "IMAP_CAPABILITY") or ""
        if CAP_TOKEN not in cap.split():
            problems.append("env/IMAP_CAPABILITY = %r" % cap)
        if os.path.lexists(os.path.join(self.envdir, REMOVED_VAR)):
            problems.append("env/%s still exists" % REMOVED_VAR)
        v = env_value(self.envdir, ADDED_VAR)
        if v != ADDED_VALUE:
            problems.append("env/%s = %r, want %r" % (ADDED_VAR, v, ADDED_VALUE))
        penv = proc_environ(self.pid)
        if CAP_TOKEN not in penv.get("IMAP_CAPABILITY", "").split():
            problems.append("tcpserver's IMAP_CAPABILITY = %r" %
                            penv.get("IMAP_CAPABILITY"))
        if REMOVED_VAR in penv:
            problems.append("tcpserver still has %s=%s" % (REMOVED_VAR,
                                                           penv[REMOVED_VAR]))
        if penv.get(ADDED_VAR) != ADDED_VALUE:
            problems.append("tcpserver's %s = %r" % (ADDED_VAR,
                                                     penv.get(ADDED_VAR)))
        c = self.imap_connect()
        try:
            caps = set(c.capabilities)
            typ, data = c.capability()
            capline = b" ".join(d for d in data if d).decode(errors="replace")
            c.logout()
        except (imaplib.IMAP4.error, OSError) as e:
            raise Fail("IMAP: %r" % e)
        if CAP_TOKEN not in caps or CAP_TOKEN not in capline.split():
            problems.append("client sees CAPABILITY %s" % capline)
        if problems:
            raise Fail("; ".join(problems))

    # ---- step 6 -------------------------------------------------------------

    def bad_config(self):
        if self.good_config is None:
            self.good_config = read_text(self.config)
        before = env_snapshot(self.envdir)
        nlines = len(self.good_config.splitlines())
        bad_line = nlines + 1
        with open(self.config, "w") as f:
            f.write(self.good_config.rstrip("\n") + "\nFOO=$(ls)\n")
        self.bad_line = bad_line
        logstart = len(self.svc.log_text())
        fatal = re.compile(r"courier-run: fatal: (\S*%s):%d:\d+" % (
            re.escape(os.path.basename(self.config)), bad_line))
        old = self.svc.status()[1]
        self.svc.svc("-t")
        seen_listener = []

        def fatal_lines():
            if listeners(self.port):
                seen_listener.append(True)
            return fatal.findall(self.svc.log_text()[logstart:])
        try:
            wait_for(fatal_lines, "`courier-run: fatal: %s:%d:COL` in the log"
                     % (self.config, bad_line))
        except Fail:
            new = self.svc.log_text()[logstart:].strip().splitlines()
            raise Fail("no `courier-run: fatal: ...%s:%d:COL` in the log; new "
                       "lines: %s" % (os.path.basename(self.config), bad_line,
                                      new[-3:] or "none"))
        # watch two more retries: never a listener, the failure repeats
        t0 = time.monotonic()
        n0 = len(fatal_lines())
        while time.monotonic() - t0 < 2.5:
            fatal_lines()
            time.sleep(0.1)
        n1 = len(fatal_lines())
        problems = []
        # the old tcpserver may still be dying right after svc -t; count only
        # listeners after the first fatal line
        if listeners(self.port):
            problems.append("something listens on port %d: pids %s" % (
                self.port, sorted(listeners(self.port))))
        if n1 <= n0:
            problems.append("supervise did not retry (fatal lines: %d)" % n1)
        after = env_snapshot(self.envdir)
        d = diff_snap(before, after, content_only=True)
        if d:
            problems.append("envdir damaged: " + "; ".join(d[:8]))
        d2 = diff_snap(before, after)
        if d2 and not d:
            note("envdir content intact, but inodes/mtimes changed: %s" %
                 "; ".join(d2[:4]))
        st = self.svc.status()
        note("after the bad config: svstat %s, %d fatal lines in 2.5s, old pid %s"
             % (st, n1, old))
        if problems:
            raise Fail("; ".join(problems))

    def recovery(self):
        with open(self.config, "w") as f:
            f.write(self.good_config)
        t0 = time.monotonic()
        self.pid = wait_up(self.svc, self.port, old_pid=self.pid)
        note("back up after %.2fs without svc, pid %d" % (
            time.monotonic() - t0, self.pid))
        c = self.imap_connect()
        try:
            c.login(self.user, self.password)
            typ, data = c.select("INBOX", readonly=True)
            if typ != "OK" or int(data[0]) != 3:
                raise Fail("SELECT INBOX after recovery: %s %r" % (typ, data))
            c.logout()
        except (imaplib.IMAP4.error, OSError) as e:
            raise Fail("IMAP after recovery: %r" % e)

    # ---- step 8 -------------------------------------------------------------

    def courier2_chain(self):
        base = os.path.join(self.tmp, "c2")
        prefix = os.path.join(base, "prefix")
        record = os.path.join(base, "record.txt")
        for d in ("sbin", "libexec/authlib", "bin", "etc"):
            os.makedirs(os.path.join(prefix, d))
        envs = "CRTEST_C2=$CRTEST_C2 CRTEST_PREFIX=$CRTEST_PREFIX TCPREMOTEIP=$TCPREMOTEIP"
        chain = ('#!/bin/sh\n'
                 '# recorder: note how we were called, then run the rest\n'
                 'printf "%%s\\n" "$0 $* | %s" >> %s\n'
                 'exec "$@"\n' % (envs, record))
        for rel in ("sbin/imaplogin", "libexec/authlib/authpwd",
                    "libexec/authlib/authcram"):
            write_file(os.path.join(prefix, rel), chain, 0o755)
        write_file(os.path.join(prefix, "bin/imapd"),
                   '#!/bin/sh\n'
                   '# recorder: the fake imapd\n'
                   'printf "%%s\\n" "$0 $* | %s" >> %s\n'
                   'printf "* PREAUTH fake imapd for %%s ready\\r\\n" "$1"\n'
                   'exit 0\n' % (envs, record), 0o755)
        cfg = os.path.join(prefix, "etc", "imapd")
        write_file(cfg,
                   "# a small Courier 2.x style config\n"
                   "MAXDAEMONS=5\n"
                   "MAILDIRPATH=Maildir\n"
                   'CRTEST_C2="chain env ok"\n'
                   'CRTEST_PREFIX="$prefix"\n'
                   'IMAP_CAPABILITY="IMAP4rev1 %s"\n' % CAP_TOKEN)
        sd = os.path.join(base, "service")

        def configure(port):
            if self.args.standin:
                script = standin_courier2(cfg, prefix, port)
            else:
                script = ("#!%s\n"
                          "# courier-imapd, the 2004 layout, fake prefix (e2e)\n"
                          "layout=courier2\n"
                          "prefix=%s\n"
                          "account=\n"
                          "softlimit=\n"
                          "rules=\n"
                          "address=%s\n"
                          "port=%d\n"
                          'auth="authpwd authcram"\n'
                          "config=%s\n" % (self.courier_run_path(), prefix,
                                           HOST, port, cfg))
            write_file(os.path.join(sd, "run"), script, 0o755)
        self.c2svc = self.debian_service(sd, cfg)
        port, pid = start_service(self.c2svc, "the courier2 service", configure)
        s = socket.create_connection((HOST, port), timeout=IMAP_TIMEOUT)
        try:
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(512)
                if not chunk:
                    break
                buf += chunk
        except OSError as e:
            raise Fail("reading the fake imapd's line: %r" % e)
        finally:
            s.close()
        if not buf.startswith(b"* PREAUTH fake imapd for Maildir"):
            raise Fail("through tcpserver got %r" % buf)
        lines = wait_for(lambda: (lambda l: l if len(l) >= 4 else None)(
            read_text(record).splitlines()), "4 recorder lines in %s" % record)
        calls = []
        for line in lines:
            argv, _, envpart = line.partition(" | ")
            words = argv.split()
            env = dict(w.split("=", 1) for w in envpart.split() if "=" in w)
            calls.append((os.path.basename(words[0]), words[1:], env, line))
        names = [c[0] for c in calls]
        problems = []
        if names != ["imaplogin", "authpwd", "authcram", "imapd"]:
            problems.append("chain ran %s" % names)
        else:
            want_login_args = [os.path.join(prefix, "libexec/authlib/authpwd"),
                               os.path.join(prefix, "libexec/authlib/authcram"),
                               os.path.join(prefix, "bin/imapd"), "Maildir"]
            if calls[0][1] != want_login_args:
                problems.append("imaplogin argv %s, want %s" % (
                    calls[0][1], want_login_args))
            if calls[3][1] != ["Maildir"]:
                problems.append("imapd argv %s" % calls[3][1])
            imapd_line = calls[3][3]
            if "CRTEST_C2=chain env ok " not in imapd_line:
                problems.append("imapd did not see CRTEST_C2: %s" % imapd_line)
            if "CRTEST_PREFIX=%s " % prefix not in imapd_line:
                problems.append("imapd's CRTEST_PREFIX is not the prefix: %s"
                                % imapd_line)
            if "TCPREMOTEIP=127.0.0.1" not in imapd_line:
                problems.append("not run by tcpserver (no TCPREMOTEIP): %s"
                                % imapd_line)
        st, spid = self.c2svc.status()
        if spid != pid or proc_stat_fields(pid)[0] != "tcpserver":
            problems.append("svstat pid %s, listener %d is %s" % (
                spid, pid, proc_exe(pid)))
        if problems:
            raise Fail("; ".join(problems) + " | record: " + " // ".join(lines))
        note("chain: " + " -> ".join(names) + " Maildir")

    # ---- step 9 -------------------------------------------------------------

    def port_retry(self):
        """start_with_port()'s retry: the first port is one we hold."""
        held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            held.bind((HOST, 0))
            held.listen(1)
            taken = held.getsockname()[1]
            # BIND_TAKEN matches what each front end really says
            for fe in ("tcpserver", "tcpsvd"):
                if not shutil.which(fe):
                    note("port-retry: no %s, its message not checked" % fe)
                    continue
                p = run([fe, HOST, str(taken), "true"], check=False, timeout=5)
                if p.returncode == 0 or not BIND_TAKEN.search(p.stderr):
                    raise Fail("%s on a taken port: exit %d, %r does not match "
                               "BIND_TAKEN" % (fe, p.returncode, p.stderr))
            base = os.path.join(self.tmp, "port-retry")
            os.makedirs(base)
            cfg = os.path.join(base, "imapd")
            shutil.copyfile(DEBIAN_IMAPD_CONFIG, cfg)
            sd = os.path.join(base, "service")
            svc = self.debian_service(sd, cfg)
            self.retry_svc = svc
            port, pid, n = start_with_port(
                "the port-retry service", self.debian_run(sd, cfg), svc.start,
                lambda p: up_poll(svc, p), svc.log_text, svc.stop_for_retry,
                first=taken)
            svc.remember()
            problems = []
            if n != 2 or port == taken:
                problems.append("%d attempts, port %d (held: %d); want 2 "
                                "attempts and another port" % (n, port, taken))
            if not BIND_TAKEN.search(svc.log_text()):
                problems.append("no `unable to bind` line in the log")
            if listeners(taken) != set():
                # only our own socket may hold it (listen() shows in /proc)
                if listeners(taken) != {os.getpid()}:
                    problems.append("port %d listeners %s" % (
                        taken, sorted(listeners(taken))))
            if problems:
                raise Fail("; ".join(problems))
            note("port-retry: %d was held, up on %d (pid %d) after %d attempts"
                 % (taken, port, pid, n))
            # stopped in the teardown, with the others
        finally:
            held.close()

    def retry_log(self):
        svc = getattr(self, "retry_svc", None)
        if not svc:
            return []
        return (["port-retry service log %s (last lines):" % svc.current] +
                ["  | " + l for l in tail(svc.current)])

    def c2_log(self):
        out = []
        if self.c2svc:
            out += ["svstat: %s %s" % self.c2svc.status()]
            out += ["courier2 service log %s (last lines):" % self.c2svc.current]
            out += ["  | " + l for l in tail(self.c2svc.current)]
            rec = os.path.join(self.tmp, "c2", "record.txt")
            out += ["recorder file:"] + ["  | " + l for l in tail(rec, 10)]
            err = read_text(self.c2svc.errfile).strip()
            if err:
                out += ["supervise stderr:"] + ["  | " + l for l in err.splitlines()[-10:]]
        return out


# --------------------------------------------------------------------------
# the stand-in run scripts (--standin): what courier-run replaces

STANDIN_CONVERT = r'''cfg=%(cfg)s
# refuse command substitution, as courier-run does (position: first `$(`)
bad=$(grep -n '\$(' "$cfg" | head -n 1)
if [ -n "$bad" ]; then
  line=${bad%%%%:*}; text=${bad#*:}; pre=${text%%%%\$(*}
  echo "courier-run: fatal: $cfg:$line:$(( ${#pre} + 1 )): command substitution (stand-in)"
  exit 100
fi
# conf2env, only replacing ./env when something changed
rm -rf ./env.new && mkdir ./env.new || exit 111
sed -n -e '/^[A-Za-z_][A-Za-z0-9_]*=/!d' -e 's/"//g' -e 's/=/ /' -e p "$cfg" |
while read -r k v; do printf '%%s\n' "$v" > "./env.new/$k"; done
if [ -d ./env ] && diff -r ./env ./env.new >/dev/null 2>&1; then
  rm -rf ./env.new
else
  rm -rf ./env.old; if [ -d ./env ]; then mv ./env ./env.old; fi
  mv ./env.new ./env && rm -rf ./env.old
fi
'''


def standin_debian(cfg, port):
    return ("#!/bin/sh\n"
            "# e2e.py --standin: the classic run script, not courier-run\n"
            "exec 2>&1\n" + STANDIN_CONVERT % {"cfg": cfg} +
            'echo "*** Starting courier-imap service (stand-in)..."\n'
            'echo "*** >>configured for maildir: Maildir"\n'
            "umask 022\n"
            'if [ -s ./env/IMAP_ULIMITD ]; then ulimit -v "$(cat ./env/IMAP_ULIMITD)"; fi\n'
            "exec envuidgid courier envdir ./env tcpserver -v -RH -l0 -c 40 "
            "%s %d %s %s Maildir\n" % (HOST, port, IMAPLOGIN, IMAPD))


def standin_courier2(cfg, prefix, port):
    return ("#!/bin/sh\n"
            "# e2e.py --standin: the 2004 recipe, not courier-run\n"
            "exec 2>&1\n" + STANDIN_CONVERT % {"cfg": cfg} +
            "echo CRTEST_PREFIX=%s > ./env/CRTEST_PREFIX\n" % prefix +
            'echo "*** Starting courier-imap service (stand-in)..."\n'
            "exec envdir ./env tcpserver -v -RH -l0 -c 5 %s %d "
            "%s/sbin/imaplogin %s/libexec/authlib/authpwd "
            "%s/libexec/authlib/authcram %s/bin/imapd Maildir\n"
            % (HOST, port, prefix, prefix, prefix, prefix))


# --------------------------------------------------------------------------

def run_steps(steps, teardown, t_start, epilogue=None):
    """Run (name, fn, needs, logs) steps in order, one `ok`/`FAIL` line
    each (a step whose needs failed is not run), then `teardown()`, always,
    also on SIGINT/SIGTERM; then `epilogue()` and the closing line `N passed,
    M failed`. The exit code: 0 when all passed and the teardown was clean.
    Shared by this file, services.py and supervisors.py."""
    results = {}   # name -> True/False
    errs = []
    interrupted = False
    try:
        for name, fn, needs, logs in steps:
            broken = [n for n in needs if not results.get(n)]
            if broken:
                results[name] = False
                print("FAIL %s: not run: %s failed" % (name, ", ".join(broken)),
                      flush=True)
                continue
            t0 = time.monotonic()
            try:
                fn()
                results[name] = True
                print("ok %s  [%.2fs]" % (name, time.monotonic() - t0),
                      flush=True)
            except KeyboardInterrupt:
                raise
            except Exception as e:
                results[name] = False
                if isinstance(e, Fail):
                    print("FAIL %s: %s  [%.2fs]" % (name, e, time.monotonic() - t0))
                else:
                    import traceback
                    print("FAIL %s: internal error %r  [%.2fs]" % (
                        name, e, time.monotonic() - t0))
                    for line in traceback.format_exc().splitlines():
                        print("    " + line)
                for line in (logs() if logs else []):
                    print("    " + line)
                sys.stdout.flush()
    except KeyboardInterrupt as e:
        interrupted = True
        print("interrupted (%s): tearing down" % (e or "SIGINT"), flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        t0 = time.monotonic()
        errs = teardown()
        for e in errs:
            print("warning: teardown: %s" % e)
        print("# teardown  [%.2fs]" % (time.monotonic() - t0))
    if epilogue:
        epilogue()
    passed = sum(1 for v in results.values() if v)
    failed = sum(1 for v in results.values() if not v)
    if interrupted:
        failed += len(steps) - len(results)
    print("# total wall time %.2fs" % (time.monotonic() - t_start))
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed or errs else 0


def main():
    global VERBOSE
    here = os.path.dirname(os.path.abspath(__file__))
    crate = os.path.dirname(os.path.dirname(here))
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(crate, "target")
    ap = argparse.ArgumentParser(description="courier-run end-to-end test")
    ap.add_argument("--courier-run", default=os.path.join(target, "debug",
                                                          "courier-run"),
                    help="the courier-run binary (default: target/debug/courier-run)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--standin", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    VERBOSE = args.verbose

    if os.geteuid() != 0:
        print("FAIL setup: must run as root (useradd, supervise, imaplogin)")
        print("0 passed, 1 failed")
        return 1
    missing = [p for p in ("svstat", "svc", "supervise", "multilog", "tcpserver",
                           "envuidgid", "envdir", "maildirmake", "authtest",
                           "useradd", "chpasswd", "userdel")
               if not shutil.which(p)]
    missing += [p for p in (IMAPLOGIN, IMAPD, AUTHDAEMOND, DEBIAN_IMAPD_CONFIG)
                if not os.path.exists(p)]
    if missing:
        print("FAIL setup: missing %s (install daemontools ucspi-tcp "
              "courier-imap courier-authdaemon)" % ", ".join(missing))
        print("0 passed, 1 failed")
        return 1

    # a TERM/HUP must still run the teardown
    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    t_start = time.monotonic()
    w = World(args)
    if args.standin:
        print("# --standin: the run files are /bin/sh scripts, not courier-run")
    else:
        print("# courier-run: %s" % os.path.abspath(args.courier_run))
    print("# temp dir: %s, user %s" % (w.tmp, w.user))
    sys.stdout.flush()

    steps = [
        # name, function, needs, logs
        ("setup", w.setup, [], None),
        ("service-up", w.service_up, [], w.main_log),
        ("imap-session", w.imap_session, ["setup", "service-up"], w.main_log),
        ("process-truth", w.process_truth, ["service-up"], w.main_log),
        ("log", w.log_check, ["service-up"], w.main_log),
        ("restart-unchanged", w.restart_unchanged, ["service-up"], w.main_log),
        ("config-change", w.config_change, ["service-up"], w.main_log),
        ("bad-config", w.bad_config, ["service-up"], w.main_log),
        ("recovery", w.recovery, ["setup", "bad-config"], w.main_log),
        # started concurrently by imap-session (Courier answers a failed
        # LOGIN only after ~7 s): its session outlives the restarts above
        ("imap-wrong-password", w.imap_wrong_password,
         ["setup", "service-up"], w.main_log),
        ("courier2-chain", w.courier2_chain, [], w.c2_log),
        ("port-retry", w.port_retry, [], w.retry_log),
    ]
    return run_steps(steps, w.teardown, t_start)


if __name__ == "__main__":
    sys.exit(main())
