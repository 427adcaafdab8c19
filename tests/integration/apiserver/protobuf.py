"""application/vnd.kubernetes.protobuf against kle-apiserver, with a
protobuf wire encoder and decoder of its own (not the server's protobuf-c):
field numbers are written here from the Kubernetes API's generated.proto
files, so a wrong number in the server's .proto shows as a difference.

For every kind the locks use (Lease, ConfigMap, Endpoints, core/v1 Event)
and events.k8s.io/v1 Event: golden protobuf request bodies decode to the
expected objects; create/get/update/list/watch work in both encodings and
store the same object either way. Then content negotiation and malformed
bodies. Prints one line per check; exits 1 on any failure.
usage: protobuf.py SERVER TOKEN CA"""
import base64, calendar, http.client, json, ssl, struct, sys, time

server, token, ca = sys.argv[1], sys.argv[2], sys.argv[3]
host, port = server.split("//")[1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
PB = "application/vnd.kubernetes.protobuf"
failures = 0


def check(what, expected, actual):
    global failures
    if expected == actual:
        print("ok   [protobuf]: " + what)
    else:
        failures += 1
        print("FAIL [protobuf]: %s: expected %r, got %r" % (what, expected, actual))


# ---- a minimal protobuf wire encoder ----

def varint(n):
    out = b""
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def f_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


def f_int(num, n):
    return varint(num << 3 | 0) + varint(n)


def f_map(num, d):
    return b"".join(f_bytes(num, f_bytes(1, k) + f_bytes(2, v)) for k, v in d.items())


def ts(s):
    """A Time or MicroTime message from RFC 3339 (UTC, optional fraction)."""
    frac = 0
    if "." in s:
        s, f = s[:-1].split(".")
        frac = int((f + "000000000")[:9])
        s += "Z"
    secs = calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))
    return f_int(1, secs) + (f_int(2, frac) if frac else b"")


def envelope(api_version, kind, raw):
    # runtime.Unknown: typeMeta=1 {apiVersion=1, kind=2}, raw=2
    return b"k8s\x00" + f_bytes(1, f_bytes(1, api_version) + f_bytes(2, kind)) + f_bytes(2, raw)


def object_meta(name, labels=None, rv=None):
    # ObjectMeta: name=1, namespace=3, resourceVersion=6, labels=11
    return (f_bytes(1, name) + f_bytes(3, "default") + (f_bytes(6, rv) if rv else b"")
            + f_map(11, labels or {}))


# ---- a minimal decoder: {field: [values]} (bytes or int) ----

def read_varint(b, i):
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def fields(b):
    out, i = {}, 0
    while i < len(b):
        tag, i = read_varint(b, i)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = read_varint(b, i)
        elif wt == 2:
            n, i = read_varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def one(b, num, default=None):
    v = fields(b).get(num)
    return v[0] if v else default


def unwrap(body):
    """(apiVersion, kind, raw) of an enveloped body."""
    assert body[:4] == b"k8s\x00", body[:8]
    u = fields(body[4:])
    tm = fields(u[1][0])
    return tm[1][0].decode(), tm[2][0].decode(), u.get(2, [b""])[0]


# ---- HTTP ----

def req(method, path, body=None, ctype="application/json", accept="application/json"):
    c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
    headers = {"Authorization": "Bearer " + token, "Accept": accept}
    if body is not None:
        headers["Content-Type"] = ctype
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type"), data


def comparable(obj):
    """The object without the fields the server sets on every write."""
    obj = json.loads(json.dumps(obj))
    for k in ("uid", "resourceVersion", "creationTimestamp", "name"):
        obj.get("metadata", {}).pop(k, None)
    return obj


# ---- the kinds: golden bytes and the JSON they stand for ----

T0, T1 = "2026-11-21T10:00:00.000000Z", "2026-11-21T10:00:01.500000Z"

kinds = []

# coordination/v1 Lease: metadata=1, spec=2; LeaseSpec: holderIdentity=1,
# leaseDurationSeconds=2, acquireTime=3, renewTime=4, leaseTransitions=5
def lease_pb(name, holder, rv=None):
    spec = f_bytes(1, holder) + f_int(2, 15) + f_bytes(3, ts(T0)) + f_bytes(4, ts(T1)) + f_int(5, 2)
    return envelope("coordination.k8s.io/v1", "Lease",
                    f_bytes(1, object_meta(name, {"app": "kle"}, rv)) + f_bytes(2, spec))


def lease_json(name, holder):
    return {"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "kle"}},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "acquireTime": T0,
                     "renewTime": T1, "leaseTransitions": 2}}


kinds.append(("Lease", "/apis/coordination.k8s.io/v1/namespaces/default/leases", lease_pb,
              lease_json, lambda o: o["spec"]["holderIdentity"],
              lambda raw: one(one(raw, 2), 1).decode()))

# core/v1 ConfigMap: metadata=1, data=2 (map), binaryData=3 (map)
def cm_pb(name, value, rv=None):
    return envelope("v1", "ConfigMap", f_bytes(1, object_meta(name, rv=rv))
                    + f_map(2, {"holder": value, "b": "two"}) + f_map(3, {"bin": b"\x00\x01\xff"}))


def cm_json(name, value):
    return {"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "default"},
            "data": {"holder": value, "b": "two"}, "binaryData": {"bin": "AAH/"}}


def cm_holder(raw):
    for e in fields(raw).get(2, []):
        if one(e, 1) == b"holder":
            return one(e, 2).decode()


kinds.append(("ConfigMap", "/api/v1/namespaces/default/configmaps", cm_pb, cm_json,
              lambda o: o["data"]["holder"], cm_holder))

# core/v1 Endpoints: metadata=1, subsets=2; EndpointSubset: addresses=1,
# ports=3; EndpointAddress: ip=1, hostname=3; EndpointPort: name=1, port=2,
# protocol=3
def ep_pb(name, host_name, rv=None):
    subset = (f_bytes(1, f_bytes(1, "127.0.0.1") + f_bytes(3, host_name))
              + f_bytes(3, f_bytes(1, "http") + f_int(2, 8080) + f_bytes(3, "TCP")))
    return envelope("v1", "Endpoints", f_bytes(1, object_meta(name, rv=rv)) + f_bytes(2, subset))


def ep_json(name, host_name):
    return {"kind": "Endpoints", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "127.0.0.1", "hostname": host_name}],
                         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]}


kinds.append(("Endpoints", "/api/v1/namespaces/default/endpoints", ep_pb, ep_json,
              lambda o: o["subsets"][0]["addresses"][0]["hostname"],
              lambda raw: one(one(one(raw, 2), 1), 3).decode()))

# core/v1 Event: metadata=1, involvedObject=2 {kind=1, namespace=2, name=3},
# reason=3, message=4, source=5 {component=1}, firstTimestamp=6,
# lastTimestamp=7, count=8, type=9, reportingComponent=14,
# reportingInstance=15
def ev_pb(name, message, rv=None):
    raw = (f_bytes(1, object_meta(name, rv=rv))
           + f_bytes(2, f_bytes(1, "Lease") + f_bytes(2, "default") + f_bytes(3, "lock"))
           + f_bytes(3, "LeaderElection") + f_bytes(4, message) + f_bytes(5, f_bytes(1, "kle"))
           + f_bytes(6, ts("2026-11-21T10:00:00Z")) + f_bytes(7, ts("2026-11-21T10:00:05Z"))
           + f_int(8, 3) + f_bytes(9, "Normal") + f_bytes(14, "kle") + f_bytes(15, "a"))
    return envelope("v1", "Event", raw)


def ev_json(name, message):
    return {"kind": "Event", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": "Lease", "namespace": "default", "name": "lock"},
            "reason": "LeaderElection", "message": message, "source": {"component": "kle"},
            "firstTimestamp": "2026-11-21T10:00:00Z", "lastTimestamp": "2026-11-21T10:00:05Z",
            "count": 3, "type": "Normal", "reportingComponent": "kle", "reportingInstance": "a"}


kinds.append(("Event", "/api/v1/namespaces/default/events", ev_pb, ev_json,
              lambda o: o["message"], lambda raw: one(raw, 4).decode()))

# events.k8s.io/v1 Event: metadata=1, eventTime=2, reportingController=4,
# reportingInstance=5, action=6, reason=7, regarding=8, note=10, type=11
def ev1_pb(name, note, rv=None):
    raw = (f_bytes(1, object_meta(name, rv=rv)) + f_bytes(2, ts(T0)) + f_bytes(4, "kle")
           + f_bytes(5, "a") + f_bytes(6, "Elect") + f_bytes(7, "LeaderElection")
           + f_bytes(8, f_bytes(1, "Lease") + f_bytes(2, "default") + f_bytes(3, "lock"))
           + f_bytes(10, note) + f_bytes(11, "Normal"))
    return envelope("events.k8s.io/v1", "Event", raw)


def ev1_json(name, note):
    return {"kind": "Event", "apiVersion": "events.k8s.io/v1",
            "metadata": {"name": name, "namespace": "default"}, "eventTime": T0,
            "reportingController": "kle", "reportingInstance": "a", "action": "Elect",
            "reason": "LeaderElection",
            "regarding": {"kind": "Lease", "namespace": "default", "name": "lock"},
            "note": note, "type": "Normal"}


kinds.append(("events.k8s.io Event", "/apis/events.k8s.io/v1/namespaces/default/events",
              ev1_pb, ev1_json, lambda o: o["note"], lambda raw: one(raw, 10).decode()))


def watch_frames(path, rv, n, accept=PB):
    """Opens a protobuf watch from rv and returns (content type, connection,
    response) to read frames from."""
    c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
    c.request("GET", "%s?watch=true&resourceVersion=%s&timeoutSeconds=20" % (path, rv),
              headers={"Authorization": "Bearer " + token, "Accept": accept})
    return c, c.getresponse()


def read_frame(r):
    head = r.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack(">I", head)
    ev = fields(r.read(n))
    typ = ev[1][0].decode()
    raw = fields(ev[2][0])[1][0]  # RawExtension.raw: an enveloped object
    return typ, unwrap(raw)


for kind, path, mk_pb, mk_json, get_val, pb_val in kinds:
    name = kind.replace("events.k8s.io ", "v1").split()[-1].lower()
    pbname, jsname = "pb-" + name, "js-" + name
    # Golden bytes in, JSON out.
    code, ctype, body = req("POST", path, mk_pb(pbname, "one"), ctype=PB)
    check("%s: protobuf create: 201 JSON" % kind, (201, "application/json"), (code, ctype))
    created = json.loads(body) if code == 201 else {}
    check("%s: golden bytes decode to the expected object" % kind,
          comparable(mk_json(pbname, "one")), comparable(created))
    # The same object through JSON is stored identically.
    code, _, _ = req("POST", path, mk_json(jsname, "one"))
    check("%s: JSON create: 201" % kind, 201, code)
    _, _, a = req("GET", path + "/" + pbname)
    _, _, b = req("GET", path + "/" + jsname)
    check("%s: same stored object either way" % kind, comparable(json.loads(b)),
          comparable(json.loads(a)))
    # Protobuf out.
    code, ctype, body = req("GET", path + "/" + jsname, accept=PB)
    check("%s: protobuf get: 200 %s" % (kind, PB), (200, PB), (code, ctype))
    av, k, raw = unwrap(body)
    check("%s: envelope kind" % kind, (mk_json("x", "y")["apiVersion"], kind.split()[-1]), (av, k))
    check("%s: protobuf get carries the object" % kind, "one", pb_val(raw))
    meta = fields(one(raw, 1))
    check("%s: protobuf metadata name and resourceVersion" % kind,
          (jsname, json.loads(b)["metadata"]["resourceVersion"]),
          (meta[1][0].decode(), meta[6][0].decode()))
    # Watch in protobuf frames, then an update in protobuf.
    code, _, lbody = req("GET", path, accept=PB)
    lav, lk, lraw = unwrap(lbody)
    items = fields(lraw).get(2, [])
    check("%s: protobuf list: %sList of 2" % (kind, kind.split()[-1]),
          (kind.split()[-1] + "List", 2), (lk, len(items)))
    list_rv = one(one(lraw, 1), 2).decode()
    wc, wr = watch_frames(path, list_rv, 1)
    check("%s: protobuf watch content type" % kind, PB + ";stream=watch",
          wr.getheader("Content-Type"))
    rv = json.loads(a)["metadata"]["resourceVersion"]
    code, ctype, body = req("PUT", path + "/" + pbname, mk_pb(pbname, "two", rv), ctype=PB,
                            accept=PB)
    check("%s: protobuf update: 200 protobuf" % kind, (200, PB), (code, ctype))
    check("%s: protobuf update answer" % kind, "two", pb_val(unwrap(body)[2]))
    code, _, body = req("PUT", path + "/" + pbname, mk_pb(pbname, "three", rv), ctype=PB,
                        accept=PB)
    st = fields(unwrap(body)[2]) if code == 409 else {}
    check("%s: stale protobuf update: 409 Status in protobuf, reason Conflict" % kind,
          (409, b"Conflict"), (code, st.get(4, [b""])[0]))
    frame = read_frame(wr)
    wc.close()
    check("%s: watch frame: MODIFIED %s with the update" % (kind, kind.split()[-1]),
          ("MODIFIED", kind.split()[-1], "two"),
          (frame[0], frame[1][1], pb_val(frame[1][2])) if frame else None)
    _, _, body = req("GET", path + "/" + pbname)
    check("%s: protobuf update stored" % kind, "two", get_val(json.loads(body)))
    # Delete with protobuf DeleteOptions (preconditions.resourceVersion).
    opts = envelope("meta.k8s.io/v1", "DeleteOptions", f_bytes(2, f_bytes(2, "1")))
    code, _, _ = req("DELETE", path + "/" + jsname, opts, ctype=PB)
    check("%s: protobuf DeleteOptions with a stale precondition: 409" % kind, 409, code)
    code, _, _ = req("DELETE", path + "/" + jsname, envelope("meta.k8s.io/v1", "DeleteOptions", b""),
                     ctype=PB)
    check("%s: protobuf delete: 200" % kind, 200, code)
    if kind == "Event":
        code, _, _ = req("DELETE", path + "/" + pbname)
        check("core Event deleted before the events.k8s.io/v1 round (same store)", 200, code)

L = "/apis/coordination.k8s.io/v1/namespaces/default/leases"

# rbac.authorization.k8s.io/v1: Role {metadata=1, rules=2 PolicyRule
# {verbs=1, apiGroups=2, resources=3, resourceNames=4}}, RoleBinding
# {metadata=1, subjects=2 Subject {kind=1, apiGroup=2, name=3,
# namespace=4}, roleRef=3 RoleRef {apiGroup=1, kind=2, name=3}}.
RB = "/apis/rbac.authorization.k8s.io/v1/namespaces/default"
rule = (f_bytes(1, "get") + f_bytes(1, "update") + f_bytes(2, "coordination.k8s.io")
        + f_bytes(3, "leases") + f_bytes(4, "my-app"))
code, _, body = req("POST", RB + "/roles", envelope("rbac.authorization.k8s.io/v1", "Role",
                    f_bytes(1, object_meta("pb-role")) + f_bytes(2, rule)), ctype=PB)
check("Role: protobuf create decodes the rules", (201, [{"verbs": ["get", "update"],
      "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["my-app"]}]),
      (code, json.loads(body).get("rules")))
code, _, body = req("POST", RB + "/rolebindings", envelope(
    "rbac.authorization.k8s.io/v1", "RoleBinding",
    f_bytes(1, object_meta("pb-rb"))
    + f_bytes(2, f_bytes(1, "ServiceAccount") + f_bytes(3, "kle") + f_bytes(4, "default"))
    + f_bytes(3, f_bytes(1, "rbac.authorization.k8s.io") + f_bytes(2, "Role") + f_bytes(3, "pb-role"))),
    ctype=PB)
got = json.loads(body)
check("RoleBinding: protobuf create decodes subjects and roleRef",
      (201, [{"kind": "ServiceAccount", "name": "kle", "namespace": "default"}],
       {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pb-role"}),
      (code, got.get("subjects"), got.get("roleRef")))
code, ctype, body = req("GET", RB + "/rolebindings/pb-rb", accept=PB)
rref = fields(one(unwrap(body)[2], 3)) if ctype == PB else {}
check("RoleBinding: protobuf get", (PB, b"pb-role"), (ctype, rref.get(3, [b""])[0]))

# Content negotiation, as kube-apiserver: weights, then the client's order.
_, ctype, _ = req("GET", L + "/pb-lease", accept=PB + ", application/json")
check("Accept protobuf first: protobuf", PB, ctype)
_, ctype, _ = req("GET", L + "/pb-lease", accept="application/json, " + PB)
check("Accept json first: JSON", "application/json", ctype)
_, ctype, _ = req("GET", L + "/pb-lease", accept="application/json;q=0.5, " + PB)
check("Accept json with a lower weight: protobuf", PB, ctype)
_, ctype, _ = req("GET", L + "/pb-lease", accept="*/*")
check("Accept */*: JSON", "application/json", ctype)
code, ctype, body = req("GET", L + "/pb-lease", accept="text/plain")
check("Accept text/plain only: 406 NotAcceptable", (406, "NotAcceptable"),
      (code, json.loads(body).get("reason")))
_, ctype, _ = req("GET", "/apis/coordination.k8s.io/v1", accept=PB + ", application/json")
check("discovery with protobuf preferred: JSON", "application/json", ctype)
code, ctype, body = req("GET", L + "/missing", accept=PB)
st = fields(unwrap(body)[2]) if ctype == PB else {}
check("404 as a protobuf Status", (404, PB, b"NotFound", 404),
      (code, ctype, st.get(4, [b""])[0], st.get(6, [0])[0]))

# Times as Go writes them: a four-digit year (0226, not 226); nanoseconds
# outside 0..999999999 carry into the seconds (time.Unix).
def micro(secs, nanos):
    return f_int(1, secs) + f_int(2, nanos)


old_secs = calendar.timegm((226, 12, 2, 0, 1, 2, 0, 0, 0))
spec = (f_bytes(1, "a") + f_int(2, 15) + f_bytes(3, micro(old_secs, 21000))
        + f_bytes(4, micro(calendar.timegm((2026, 12, 2, 0, 1, 2, 0, 0, 0)), -1000)))
code, _, out = req("POST", L, envelope("coordination.k8s.io/v1", "Lease",
                                       f_bytes(1, object_meta("old-times")) + f_bytes(2, spec)),
                   ctype=PB)
got = json.loads(out).get("spec", {}) if code == 201 else {}
check("protobuf times: year 226 as 0226, negative nanos carried",
      (201, "0226-12-02T00:01:02.000021Z", "2026-12-02T00:01:01.999999Z"),
      (code, got.get("acquireTime"), got.get("renewTime")))

# Malformed bodies: 400 or 415 with a clear message, never a crash.
def bad(what, body, want_code, want_text, path=L):
    code, _, out = req("POST", path, body, ctype=PB)
    try:
        msg = json.loads(out).get("message", "")
    except ValueError:
        msg = out[:80]
    check(what, (want_code, True), (code, want_text in msg))


good = lease_pb("bad", "a")
bad("wrong magic: 400", b"k9s\x00" + good[4:], 400, "expected prefix [107 56 115 0]")
bad("empty body: 400", b"", 400, "expected prefix")
bad("truncated envelope: 400", good[:len(good) - 7], 400, "malformed protobuf body")
bad("truncated object in a whole envelope: 400",
    envelope("coordination.k8s.io/v1", "Lease", lease_pb("x", "a")[30:-3]), 400, "does not decode")
bad("huge length: 400", b"k8s\x00" + varint(2 << 3 | 2) + varint(1 << 62) + b"abc", 400,
    "malformed protobuf body")
bad("kind without protobuf here: 415", envelope("apps/v1", "Deployment", b""), 415,
    "not supported")
bad("no kind in the envelope: 400", b"k8s\x00" + f_bytes(2, b""), 400, "names no kind")
bad("wrong kind for the resource: 400", cm_pb("x", "y"), 400,
    "the API version in the data (v1) does not match the expected API version "
    "(coordination.k8s.io/v1)")
bad("wrong kind of the right group version: 400",
    envelope("coordination.k8s.io/v1", "LeaseList", b""), 400,
    "the kind in the data (LeaseList) does not match the expected kind (Lease)")
code, _, out = req("POST", L, b"x", ctype="text/plain")
check("unknown Content-Type: 415 naming both media types",
      (415, True), (code, PB in json.loads(out).get("message", "")))
code, _, _ = req("GET", L + "/bad")
check("nothing stored by the malformed bodies", 404, code)

print("protobuf: %s" % ("all passed" if failures == 0 else "%d failed" % failures))
sys.exit(1 if failures else 0)
