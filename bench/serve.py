#!/usr/bin/env python3
"""Timing helper of bench/serve.sh: how long until a loopback port greets.

  serve.py port
      print a free loopback port
  serve.py start PORT RUNS TIMEOUT CWD [--stop CMD] -- CMD...
      RUNS times: exec CMD in CWD (its own session, as a supervisor starts a
      run file), time until 127.0.0.1:PORT answers "* OK", then stop it
      (CMD --stop through sh when given, e.g. Debian's `imapd stop`, and a
      SIGTERM/SIGKILL to CMD's process group) and wait for the port to close
  serve.py restart PORT RUNS TIMEOUT SVCDIR
      RUNS times under a running supervise: `svc -t SVCDIR`, time until a
      greeting comes from a new process (supervise's pid changed, confirmed
      with svstat); each run 1.2 s after the previous start, past the 1 s
      supervise waits after a start before it acts on svc again
Prints the times in ms, one per line. Exits 111 when a run misses TIMEOUT.
"""

import os
import signal
import socket
import subprocess
import sys
import time

POLL = 0.0005  # s between connection attempts: well under the times measured
SETTLE = 1.2  # s after a start before the next svc -t (see restart)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def greets(port):
    """One attempt: True when the port answers with an IMAP "* OK" line."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            data = b""
            while b"\n" not in data:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
            return data.startswith(b"* OK")
    except OSError:
        return False


def port_closed(port, deadline):
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return True
        time.sleep(0.005)
    return False


def fail(msg):
    print(f"serve.py: {msg}", file=sys.stderr)
    sys.exit(111)


def stop(proc, stop_cmd, cwd):
    if stop_cmd:
        subprocess.run(["sh", "-c", stop_cmd], cwd=cwd, timeout=10,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
    proc.wait()


def start(port, runs, timeout, cwd, stop_cmd, cmd):
    log = open(os.path.join(cwd, "serve.log"), "ab")
    for _ in range(runs):
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, start_new_session=True,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            ok = False
            while time.monotonic() - t0 < timeout:
                if greets(port):
                    ok = True
                    break
                # A front end that exits (not a daemonising rc) has failed.
                if not stop_cmd and proc.poll() is not None:
                    break
                time.sleep(POLL)
            t1 = time.monotonic()
        finally:
            stop(proc, stop_cmd, cwd)
        if not ok:
            fail(f"{cmd[0]}: no greeting on port {port} within {timeout} s "
                 f"(exit {proc.returncode}; see {cwd}/serve.log)")
        print(f"{(t1 - t0) * 1000:.2f}", flush=True)
        if not port_closed(port, time.monotonic() + timeout):
            fail(f"port {port} still answers after stopping {cmd[0]}")


def supervised_pid(svcdir):
    """supervise's status file: bytes 12..15 are the child's pid (little endian)."""
    with open(os.path.join(svcdir, "supervise", "status"), "rb") as f:
        st = f.read()
    return int.from_bytes(st[12:16], "little") if len(st) >= 16 else 0


def restart(port, runs, timeout, svcdir):
    deadline = time.monotonic() + timeout
    while not (supervised_pid(svcdir) and greets(port)):  # the first start
        if time.monotonic() > deadline:
            fail(f"supervise in {svcdir}: no greeting on port {port}")
        time.sleep(0.01)
    t1 = time.monotonic()
    for _ in range(runs):
        # supervise sleeps 1 s after each start before it reads svc again (its
        # guard against a run file that exits at once): let it pass, so a run
        # times the restart, not the previous run's guard.
        time.sleep(max(0.0, t1 + SETTLE - time.monotonic()))
        old = supervised_pid(svcdir)
        t0 = time.monotonic()
        subprocess.run(["svc", "-t", svcdir], check=True)
        ok = False
        while time.monotonic() - t0 < timeout:
            pid = supervised_pid(svcdir)
            # A greeting counts only once supervise runs a new child: before
            # that, the old one may still accept.
            if pid and pid != old and greets(port):
                ok = True
                break
            time.sleep(POLL)
        t1 = time.monotonic()
        if not ok:
            fail(f"svc -t {svcdir}: no greeting from a new process within {timeout} s")
        out = subprocess.run(["svstat", svcdir], capture_output=True, text=True).stdout
        if f"(pid {pid})" not in out or f"(pid {old})" in out:
            fail(f"svstat does not show the new pid {pid} (old {old}): {out.strip()}")
        print(f"{(t1 - t0) * 1000:.2f}", flush=True)


def main(argv):
    # A TERM (the script's trap, a kill of its group) unwinds through the
    # finally of start(), which stops the started process: it runs in its
    # own session, out of reach of a signal to ours.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    if argv[:1] == ["port"]:
        print(free_port())
    elif argv[:1] == ["start"] and len(argv) >= 7:
        port, runs, timeout, cwd = int(argv[1]), int(argv[2]), float(argv[3]), argv[4]
        rest = argv[5:]
        stop_cmd = None
        if rest[0] == "--stop":
            stop_cmd, rest = rest[1], rest[2:]
        if rest[:1] != ["--"] or len(rest) < 2:
            fail("start: expected -- CMD...")
        start(port, runs, timeout, cwd, stop_cmd, rest[1:])
    elif argv[:1] == ["restart"] and len(argv) == 5:
        restart(int(argv[1]), int(argv[2]), float(argv[3]), argv[4])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(100)


if __name__ == "__main__":
    main(sys.argv[1:])
