#!/usr/bin/env python3
"""End-to-end test of what couriertcpd gives a supervised service, and of
`courier-run ./run --rebuild-access` on every front end.

    python3 tests/e2e/couriertcpd.py [--courier-run PATH] [--keep] [-v]

Needs root, loopback only (clients bind 127.0.0.x source addresses, and
::1), and the Debian 12 packages daemontools, ucspi-tcp, ipsvd,
courier-base (couriertcpd, makedat), courier-imap and libnet-cidr-perl.
Standard library only; the helpers are e2e.py's.

The server program is a recorder in imapd's place (`login=`, `imapd=`): it
writes its environment to a file named for the client's address, greets
`* OK recorder`, and holds the connection until the client closes it, so a
connection is a slot couriertcpd counts.

Steps:
  up              supervise runs `courier-run ./run` (layout=debian: the
                  front end is couriertcpd): svstat's pid is the listener,
                  a couriertcpd child of supervise
  maxperip        MAXPERIP=2: two connections from 127.0.0.2 are served,
                  the third from 127.0.0.2 is refused, one from 127.0.0.3
                  is served
  access-env      `127.0.0.6<tab>allow,E2E_NAME=from-list` in IMAPACCESSFILE:
                  the server program's environment has E2E_NAME=from-list
  rebuild-access  a deny line for 127.0.0.4 added to the list; before
                  --rebuild-access the old .dat is in force (served); after
                  it (makedat, then svc -h through supervise), 127.0.0.4 is
                  refused on the next connection, 127.0.0.5 still served,
                  and couriertcpd's pid is the same
  ipv6            address=::1: courier-run execs couriertcpd, which serves a
                  client over IPv6 (skipped, with the reason, without ::1)
  rebuild-tcpserver, rebuild-tcpsvd
                  server=tcpserver / tcpsvd with access=LIST: a deny line
                  added and `--rebuild-access` (no supervisor needed: they
                  read the cdb per connection): the next connection from
                  that address is refused, same pid
  init-keeps-deny `courier-run init DIR --layout debian --set config=...`
                  with the config's IMAPACCESSFILE denying 127.0.0.5: the
                  run file names no access list of its own, init prints the
                  one it keeps, and the service it made (real imaplogin)
                  refuses 127.0.0.5 and greets 127.0.0.1
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
from e2e import (Fail, HOST, Service, listeners, note, proc_stat_fields,  # noqa: E402
                 read_text, run, tail, wait_for, write_file)

TIMEOUT = 10.0
RECORDER = """#!/bin/sh
# imapd's place: record the environment, greet, hold the connection.
env > "%s/env.$TCPREMOTEIP"
echo "* OK recorder"
exec cat > /dev/null
"""


def greeting(src, port, host=HOST, family=socket.AF_INET):
    """Connect from src; the first line, or b'' when the connection was
    closed without one (refused by the front end)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    try:
        s.bind((src, 0))
        s.connect((host, port))
        data = b""
        while not data.endswith(b"\n"):
            try:
                chunk = s.recv(200)
            except ConnectionResetError:
                return b"", None
            if not chunk:
                break
            data += chunk
        return data, s
    except Exception:
        s.close()
        raise


def listening_v6(port):
    """Something listens on [::1]:port (e2e.listeners() is IPv4's)."""
    for line in read_text("/proc/net/tcp6").splitlines()[1:]:
        f = line.split()
        if len(f) > 3 and f[3] == "0A" and f[1] == (
                "00000000000000000000000001000000:%04X" % port):
            return True
    return False


def served(src, port, **kw):
    line, s = greeting(src, port, **kw)
    if s is not None:
        s.close()
    return line.startswith(b"* OK")


class Direct:
    """courier-run run directly (it execs the front end): its own process
    group, output in a file; started again on another port when the front
    end found its port taken."""

    def __init__(self, tmp, name):
        self.out = os.path.join(tmp, name + ".out")
        self.proc = None

    def start(self, argv, cwd, port_of, v6=False):
        for _ in range(e2e.PORT_ATTEMPTS):
            port = e2e.candidate_port()
            args = argv(port)         # once: it may write files
            with open(self.out, "wb") as f:
                self.proc = subprocess.Popen(
                    args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=f,
                    stderr=subprocess.STDOUT, start_new_session=True)

            def ready():
                if self.proc.poll() is not None:
                    return "exited"
                if v6:
                    return "up" if listening_v6(port) else None
                return "up" if self.proc.pid in listeners(port_of(port)) else None
            got = wait_for(ready, "%s listening" % args[0])
            if got == "up":
                return port
            if not e2e.BIND_TAKEN.search(read_text(self.out)):
                raise Fail("exited %s: %s" % (self.proc.returncode,
                                               read_text(self.out)[-2000:]))
        raise Fail("port taken on every attempt")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def log(self):
        return ["output:"] + ["  | " + l for l in read_text(self.out).splitlines()[-15:]]


class Suite:
    def __init__(self, args):
        self.args = args
        self.w = e2e.World(args)      # temp dir, teardown, services
        self.tmp = self.w.tmp
        self.cr = self.w.courier_run_path()
        self.direct = []

    def stop_direct(self):
        for d in self.direct:
            d.stop()

    def setup(self):
        self.w.cleanups.append(self.stop_direct)
        self.recdir = os.path.join(self.tmp, "rec")
        os.makedirs(self.recdir)
        self.recorder = os.path.join(self.tmp, "recorder")
        write_file(self.recorder, RECORDER % self.recdir, 0o755)

    def config(self, name, port, extra=""):
        """A copy of Debian's imapd/imapd-ssl with ADDRESS, PORT and
        IMAPACCESSFILE of the test (and `extra`)."""
        etc = os.path.join(self.tmp, name, "etc")
        os.makedirs(etc, exist_ok=True)
        for cfg in ("imapd", "imapd-ssl"):
            shutil.copyfile(os.path.join("/etc/courier", cfg),
                            os.path.join(etc, cfg))
        access = os.path.join(etc, "imapaccess")
        if not os.path.exists(access):
            write_file(access, "# the test's list\n*\tallow\n")
        with open(os.path.join(etc, "imapd"), "a") as f:
            f.write("\n# couriertcpd e2e\nADDRESS=%s\nPORT=%d\n"
                    "IMAPACCESSFILE=%s\n%s" % (HOST, port, access, extra))
        return etc, access

    # ---- couriertcpd under supervise -------------------------------------

    def up(self):
        sd = os.path.join(self.tmp, "svc", "service")
        os.makedirs(os.path.join(sd, "log"))
        write_file(os.path.join(sd, "log", "run"),
                   "#!/bin/sh\nexec multilog t ./main\n", 0o755)
        self.svc = Service(sd, os.path.join(self.tmp, "svc", "supervise.err"))
        self.w.add_service(self.svc)

        def configure(port):
            etc, self.access = self.config("svc", port, "MAXPERIP=2\n")
            write_file(self.access, "127.0.0.6\tallow,E2E_NAME=from-list\n"
                       "*\tallow\n")
            write_file(os.path.join(sd, "run"),
                       "#!%s\n# couriertcpd e2e: layout=debian's front end\n"
                       "service=imapd\nlayout=debian\n"
                       'config="%s/imapd %s/imapd-ssl"\n'
                       "login=\nimapd=%s\n" % (self.cr, etc, etc, self.recorder),
                       0o755)
        self.port, self.pid = e2e.start_service(self.svc, "couriertcpd",
                                                configure)
        comm, _, ppid, _ = proc_stat_fields(self.pid)
        if comm != "couriertcpd" or ppid != self.svc.sup.pid:
            raise Fail("listener %d is %s, parent %d (supervise %d)" % (
                self.pid, comm, ppid, self.svc.sup.pid))
        note("couriertcpd pid %d port %d" % (self.pid, self.port))

    def svc_log(self):
        if not hasattr(self, "svc"):
            return []
        return ["service log:"] + ["  | " + l for l in tail(self.svc.current)]

    def maxperip(self):
        held = []
        try:
            for i in (1, 2):
                line, s = greeting("127.0.0.2", self.port)
                if not line.startswith(b"* OK"):
                    raise Fail("connection %d from 127.0.0.2: %r" % (i, line))
                held.append(s)
            line, s = greeting("127.0.0.2", self.port)
            if s is not None:
                held.append(s)
            if line.startswith(b"* OK"):
                raise Fail("third connection from 127.0.0.2 served (MAXPERIP=2)")
            if not served("127.0.0.3", self.port):
                raise Fail("127.0.0.3 refused while 127.0.0.2 holds 2")
            note("third from 127.0.0.2: %r; 127.0.0.3 served" % line)
        finally:
            for s in held:
                s.close()

    def access_env(self):
        if not served("127.0.0.6", self.port):
            raise Fail("127.0.0.6 refused")
        # couriertcpd's TCPREMOTEIP is ::ffff:127.0.0.6 (an IPv6 socket)
        def env_file():
            for n in os.listdir(self.recdir):
                if n.endswith("127.0.0.6"):
                    return read_text(os.path.join(self.recdir, n)) or None
        text = wait_for(env_file, "the recorder's env")
        if "E2E_NAME=from-list\n" not in text:
            raise Fail("E2E_NAME not in the server program's environment:\n%s"
                       % text)

    def rebuild_access(self):
        if not served("127.0.0.4", self.port):
            raise Fail("127.0.0.4 refused before the deny line")
        with open(self.access, "a") as f:
            f.write("127.0.0.4\tdeny\n")
        # makedat alone, as an admin might: not seen without the HUP
        dat = self.access + ".dat"
        run(["/usr/lib/courier/makedat", "-src=" + self.access,
             "-file=" + dat, "-tmp=" + dat + ".tmp", "-cidr"])
        if not served("127.0.0.4", self.port):
            raise Fail("a rebuilt .dat was seen without SIGHUP")
        p = subprocess.run([self.cr, "./run", "--rebuild-access"],
                           cwd=self.svc.path, capture_output=True, text=True,
                           timeout=TIMEOUT)
        note("--rebuild-access: exit %d: %s" % (p.returncode, p.stdout.strip()))
        if p.returncode != 0 or "svc -h" not in p.stdout:
            raise Fail("--rebuild-access: exit %d: %s%s" % (
                p.returncode, p.stdout, p.stderr))

        def refused():
            return not served("127.0.0.4", self.port) or None
        wait_for(refused, "127.0.0.4 refused after the HUP", timeout=5)
        if not served("127.0.0.5", self.port):
            raise Fail("127.0.0.5 refused")
        st, pid = self.svc.status()
        if pid != self.pid or listeners(self.port) != {self.pid}:
            raise Fail("pid %s after the HUP, was %d" % (pid, self.pid))
        note("deny in effect, couriertcpd pid %d unchanged" % pid)

    # ---- ::1 ---------------------------------------------------------------

    def ipv6(self):
        try:
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.bind(("::1", 0))
            s.close()
        except OSError as e:
            if os.environ.get("CI") == "true":
                raise Fail("no ::1 on this machine under CI=true: %s" % e)
            note("SKIPPED ipv6: no ::1 (%s)" % e)
            return
        etc, _ = self.config("v6", 1)
        d = Direct(self.tmp, "v6")
        self.direct.append(d)

        def argv(port):
            return [self.cr, "--set", "layout=debian", "--set",
                    "config=%s/imapd %s/imapd-ssl" % (etc, etc), "--set",
                    "address=::1", "--set", "port=%d" % port, "--set",
                    "login=", "--set", "imapd=" + self.recorder, "--set",
                    "envdir="]
        port = d.start(argv, self.tmp, lambda p: p, v6=True)
        if not served("::1", port, host="::1", family=socket.AF_INET6):
            raise Fail("no greeting over ::1")
        note("served over [::1]:%d" % port)
        d.stop()

    # ---- tcpserver and tcpsvd ----------------------------------------------

    def rebuild_front(self, front):
        name = "rb-" + front.split()[0]
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        access = os.path.join(d, "list")
        write_file(access, "*\tallow\n")
        direct = Direct(self.tmp, name)
        self.direct.append(direct)

        def argv(port):
            return [self.cr, "--set", "layout=courier2", "--set",
                    "config=", "--set", "server=" + front, "--set",
                    "address=127.0.0.1", "--set", "port=%d" % port,
                    "--set", "rules=", "--set", "access=" + access,
                    "--set", "login=", "--set", "imapd=" + self.recorder,
                    "--set", "account=", "--set", "softlimit=",
                    "--set", "auth="]
        port = direct.start(argv, d, lambda p: p)
        pid = direct.proc.pid
        if not served("127.0.0.7", port):
            raise Fail("127.0.0.7 refused before the deny line")
        time.sleep(0.02)     # a later mtime than the cdb's
        with open(access, "a") as f:
            f.write("127.0.0.7\tdeny\n")
        p = subprocess.run(argv(port) + ["--rebuild-access"], cwd=d,
                           capture_output=True, text=True, timeout=TIMEOUT)
        note("%s --rebuild-access: exit %d: %s" % (front, p.returncode,
                                                   p.stdout.strip()))
        if p.returncode != 0:
            raise Fail("--rebuild-access: exit %d: %s%s" % (
                p.returncode, p.stdout, p.stderr))
        if served("127.0.0.7", port):
            raise Fail("127.0.0.7 served after the deny line was rebuilt")
        if not served("127.0.0.8", port):
            raise Fail("127.0.0.8 refused")
        if listeners(port) != {pid}:
            raise Fail("listener %s, was %d" % (listeners(port), pid))
        direct.stop()

    # ---- init ----------------------------------------------------------------

    def init_keeps_deny(self):
        d = Direct(self.tmp, "init")
        self.direct.append(d)
        sd = os.path.join(self.tmp, "init", "service")
        state = {}

        def argv(port):
            # the config names the port; init keeps it
            etc, access = self.config("init", port)
            write_file(access, "127.0.0.5\tdeny\n*\tallow\n")
            if os.path.exists(sd):
                shutil.rmtree(sd)
            p = subprocess.run(
                [self.cr, "init", sd, "--layout", "debian", "--set",
                 "config=%s/imapd %s/imapd-ssl" % (etc, etc),
                 # a greeting is all this step asks for: no authdaemond
                 "--set", "wait_authdaemond=no"],
                capture_output=True, text=True, timeout=TIMEOUT)
            if p.returncode != 0:
                raise Fail("init: exit %d: %s%s" % (p.returncode, p.stdout,
                                                    p.stderr))
            state["init"] = p.stdout
            state["access"] = access
            return [os.path.join(sd, "run")]
        port = d.start(argv, "/", lambda p: p)
        note("init said:\n" + state["init"])
        run_text = read_text(os.path.join(sd, "run"))
        if "access=" in run_text or os.path.exists(os.path.join(sd, "access")):
            raise Fail("init wrote an access list of its own:\n%s" % run_text)
        if state["access"] not in state["init"]:
            raise Fail("init did not say which access list it keeps")
        if "PORT=%d" % port not in state["init"]:
            raise Fail("init did not say it keeps the config's port")
        if served("127.0.0.5", port):
            raise Fail("127.0.0.5 served: the config's deny rule was dropped")
        if not served("127.0.0.1", port):
            raise Fail("127.0.0.1 refused")
        d.stop()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    crate = os.path.dirname(os.path.dirname(here))
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(crate, "target")
    ap = argparse.ArgumentParser(description="courier-run couriertcpd e2e test")
    ap.add_argument("--courier-run", default=os.path.join(target, "debug",
                                                          "courier-run"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--standin", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    e2e.VERBOSE = args.verbose
    if os.geteuid() != 0:
        print("FAIL setup: must run as root\n0 passed, 1 failed")
        return 1
    missing = [p for p in ("svstat", "svc", "supervise", "multilog",
                           "tcpserver", "tcpsvd") if not shutil.which(p)]
    missing += [p for p in ("/usr/sbin/couriertcpd", "/usr/lib/courier/makedat",
                            "/etc/courier/imapd", "/etc/courier/imapd-ssl",
                            "/usr/lib/courier/courier/imaplogin")
                if not os.path.exists(p)]
    if missing:
        print("FAIL setup: missing %s (install daemontools ucspi-tcp ipsvd "
              "courier-imap)\n0 passed, 1 failed" % ", ".join(missing))
        return 1

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    t_start = time.monotonic()
    s = Suite(args)
    print("# courier-run: %s; temp dir %s" % (os.path.abspath(args.courier_run),
                                              s.tmp), flush=True)
    steps = [
        ("setup", s.setup, [], None),
        ("up", s.up, ["setup"], s.svc_log),
        ("maxperip", s.maxperip, ["up"], s.svc_log),
        ("access-env", s.access_env, ["up"], s.svc_log),
        ("rebuild-access", s.rebuild_access, ["up"], s.svc_log),
        ("ipv6", s.ipv6, ["setup"], None),
        ("rebuild-tcpserver", lambda: s.rebuild_front("tcpserver -v -RH -l0"),
         ["setup"], None),
        ("rebuild-tcpsvd", lambda: s.rebuild_front("tcpsvd -v"), ["setup"], None),
        ("init-keeps-deny", s.init_keeps_deny, ["setup"], None),
    ]
    return e2e.run_steps(steps, s.w.teardown, t_start)


if __name__ == "__main__":
    sys.exit(main())
