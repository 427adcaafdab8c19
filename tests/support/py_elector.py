#!/usr/bin/env python3
"""A replica of the Kubernetes Python client's leader elector (Debian's
python3-kubernetes: kubernetes.leaderelection with a ConfigMapLock), for
bench/chaos's mixed-implementation runs beside `kle run` replicas.

    py_elector.py --server URL --ca FILE --token-file FILE --identity ID
                  --lock-name NAME --worklog FILE [--pidfile FILE]
                  [--namespace NS] [--timings LEASE/RENEW/RETRY]

While it leads, it runs tests/support/worker.sh (LEAD/BEAT/STOP lines in
--worklog, as under kle run) with KLE_IDENTITY=ID and
KLE_LEADER_TRANSITIONS set to the leaderTransitions of the record it took
over (the Python elector writes none of its own: this is not a fencing
token, only what it observed). Before every write of the lock it appends
"TIME_US WRITE ID TOKEN PID" to --worklog, and when the server answered
409 (a conflict or AlreadyExists: the write did not land) the same line
with NOWRITE and the attempt's time: the checker uses the last write that
may have landed to tell an overlap caused by this elector's own missing
guard (its work ran past its lease) from a takeover that came too early.

What the wrapper adds around the library, as an application must:
  - a request timeout (the elector calls the API without one, so a frozen
    connection would hold its renew loop, and its work, for ever);
  - the worker stops when leadership ends (on_stopped_leading), when the
    process gets SIGTERM, and, through PR_SET_PDEATHSIG, when it dies;
  - when the worker exits or leadership ends, the process exits (the
    runner starts a new replica with a new identity).
It does not add what the elector lacks: nothing stops the work at the
renew deadline if the process is frozen or a request is slow.
"""
import argparse
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.configmaplock import ConfigMapLock

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.sh")
ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
PR_SET_PDEATHSIG = 1

a = None
worker = None
worker_lock = threading.Lock()
observed_transitions = 0


def event(what, t_us=None):
    t_us = time.time_ns() // 1000 if t_us is None else t_us
    with open(a.worklog, "a") as f:
        f.write(f"{t_us} {what} {a.identity} {observed_transitions} {os.getpid()}\n")
    return t_us


def stop_worker_and_exit(code):
    with worker_lock:
        w = worker
        if w is not None and w.poll() is None:
            w.send_signal(signal.SIGTERM)
            try:
                w.wait(a.grace)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
    logging.info("%s exiting (%d)", a.identity, code)
    os._exit(code)


def on_started_leading():
    global worker
    env = dict(os.environ, KLE_IDENTITY=a.identity,
               KLE_LEADER_TRANSITIONS=str(observed_transitions))
    if a.pidfile:
        env["WORKER_PIDFILE"] = a.pidfile
    libc = ctypes.CDLL(None, use_errno=True)

    def child():
        # The worker must not outlive this process (SIGKILL of the elector).
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() == 1:
            os._exit(1)

    with worker_lock:
        worker = subprocess.Popen(["bash", WORKER, a.worklog], env=env, preexec_fn=child,
                                  stdin=subprocess.DEVNULL)
    # This thread lives as long as the worker: PR_SET_PDEATHSIG fires when
    # the thread that started the child ends.
    worker.wait()
    logging.info("%s: the worker exited (%s)", a.identity, worker.returncode)
    stop_worker_and_exit(3)


def on_stopped_leading():
    logging.info("%s: stopped leading", a.identity)
    stop_worker_and_exit(0)


def main():
    global a
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--identity", required=True)
    ap.add_argument("--lock-name", required=True)
    ap.add_argument("--namespace", default="default")
    ap.add_argument("--worklog", required=True)
    ap.add_argument("--pidfile", default=None)
    ap.add_argument("--timings", default="3/2/1")
    ap.add_argument("--grace", type=float, default=0.5)
    a = ap.parse_args()
    # Whole seconds as ints, as the library's example passes them: it writes
    # str(lease_duration) into the record ("3", not "3.0").
    lease, renew, retry = (int(float(x.rstrip("s"))) if float(x.rstrip("s")).is_integer()
                           else float(x.rstrip("s")) for x in a.timings.split("/"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    cfg = client.Configuration()
    cfg.host = a.server
    cfg.ssl_ca_cert = a.ca
    cfg.api_key = {"authorization": "Bearer " + open(a.token_file).read().strip()}
    client.Configuration.set_default(cfg)

    lock = ConfigMapLock(a.lock_name, a.namespace, a.identity)
    # A request timeout of one retry period (whole seconds: the client takes
    # an int as the total timeout).
    timeout = max(1, int(retry))
    api = lock.api_instance
    last_status = [None]  # of the last write: an HTTP status, or None

    def with_timeout(call, record):
        def wrapped(*args, **kwargs):
            if record:
                last_status[0] = None
            try:
                return call(*args, _request_timeout=timeout, **kwargs)
            except ApiException as e:
                if record:
                    last_status[0] = e.status
                raise
        return wrapped

    for m in ("read_namespaced_config_map", "replace_namespaced_config_map",
              "create_namespaced_config_map"):
        setattr(api, m, with_timeout(getattr(api, m), m != "read_namespaced_config_map"))

    get, update, create = lock.get, lock.update, lock.create

    def logged_get(name, namespace):
        global observed_transitions
        ok, rec = get(name, namespace)
        ref = lock.configmap_reference
        if ok and ref is not None and ref.metadata.annotations:
            try:
                raw = json.loads(ref.metadata.annotations.get(ANNOTATION) or "{}")
                if raw.get("holderIdentity") != a.identity:
                    observed_transitions = int(raw.get("leaderTransitions") or 0)
            except (ValueError, TypeError):
                pass
        return ok, rec

    def logged(write):
        t = event("WRITE")
        ok = write()
        if not ok and last_status[0] == 409:
            event("NOWRITE", t)
        return ok

    def logged_update(name, namespace, record):
        return logged(lambda: update(name, namespace, record))

    def logged_create(name, namespace, election_record):
        return logged(lambda: create(name=name, namespace=namespace,
                                     election_record=election_record))

    lock.get, lock.update, lock.create = logged_get, logged_update, logged_create
    signal.signal(signal.SIGTERM, lambda *_: stop_worker_and_exit(0))
    config = electionconfig.Config(lock, lease_duration=lease, renew_deadline=renew,
                                   retry_period=retry, onstarted_leading=on_started_leading,
                                   onstopped_leading=on_stopped_leading)
    try:
        leaderelection.LeaderElection(config).run()
    except Exception as e:  # an unreadable record, say: never keep working
        logging.error("%s: the elector failed: %r", a.identity, e)
        stop_worker_and_exit(4)
    stop_worker_and_exit(0)


if __name__ == "__main__":
    sys.exit(main())
