"""Random requests (odd JSON, nulls, wrong types, random bytes, random media
types and query parameters) against kle-apiserver. Prints the status
counts; exits 1 when a request got no HTTP answer or a 5xx.
usage: fuzz.py SERVER TOKEN CA SEED COUNT"""
import json, random, ssl, sys, http.client, os
server, token, ca = sys.argv[1], sys.argv[2], sys.argv[3]
host, port = server.split("//")[1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
random.seed(int(sys.argv[4]))
keys = ["apiVersion","kind","metadata","name","namespace","labels","annotations","spec","data","holderIdentity",
        "leaseDurationSeconds","acquireTime","renewTime","leaseTransitions","resourceVersion","uid","generateName",
        "involvedObject","regarding","note","message","status","phase","binaryData","subsets","$patch","preconditions","count",
        "rules","subjects","roleRef","verbs","resourceAttributes","nonResourceAttributes","expirationSeconds","selector",
        "template","containers","matchLabels","replicas"]
def val(d=0):
    r = random.random()
    if d > 3 or r < 0.3: return random.choice([None, 0, -1, 5, 1.5, True, "", "x", "Bad_Name", "2026-11-21T10:00:00Z", "a"*300, "ü", [], {}])
    if r < 0.5: return [val(d+1) for _ in range(random.randint(0,3))]
    return {random.choice(keys): val(d+1) for _ in range(random.randint(0,4))}
paths = ["/apis/coordination.k8s.io/v1/namespaces/default/leases", "/api/v1/namespaces/default/configmaps",
         "/api/v1/namespaces/default/events", "/apis/events.k8s.io/v1/namespaces/default/events",
         "/api/v1/namespaces", "/api/v1/namespaces/default/endpoints", "/api/v1/namespaces/nope/configmaps",
         "/api/v1/namespaces/default/serviceaccounts", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
         "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "/apis/apps/v1/namespaces/default/deployments",
         "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"]
names = ["a", "b", "x1", "default", "Bad", ""]
cts = ["application/json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/vnd.kubernetes.protobuf", "text/plain"]
def pb_varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])
def pb_field(num, data):
    return pb_varint(num << 3 | 2) + pb_varint(len(data)) + data
# A valid protobuf Lease ("k8s\0", runtime.Unknown{typeMeta, raw}) to mutate.
pb_lease = b"k8s\x00" + pb_field(1, pb_field(1, b"coordination.k8s.io/v1") + pb_field(2, b"Lease")) + \
    pb_field(2, pb_field(1, pb_field(1, b"a") + pb_field(3, b"default")) +
             pb_field(2, pb_field(1, b"holder") + pb_varint(2 << 3) + pb_varint(15)))
def pb_body():
    """Malformed protobuf: truncated, bit-flipped, huge lengths, wrong magic,
    wrong or deep kinds, random tags."""
    b = bytearray(pb_lease)
    r = random.random()
    if r < 0.2:
        return bytes(b[:random.randint(0, len(b))])
    if r < 0.4:
        for _ in range(random.randint(1, 4)):
            b[random.randrange(len(b))] ^= 1 << random.randrange(8)
        return bytes(b)
    if r < 0.5:
        return b"k8s\x00" + pb_varint(2 << 3 | 2) + pb_varint(random.choice([1 << 31, 1 << 62, 2**64 - 1])) + b"xy"
    if r < 0.6:
        return b"k8s\x01" + bytes(b[4:])
    if r < 0.7:
        kind = random.choice([b"ConfigMap", b"Status", b"LeaseList", b"Deployment", b"", b"DeleteOptions", b"Event"])
        return b"k8s\x00" + pb_field(1, pb_field(1, random.choice([b"v1", b"coordination.k8s.io/v1", b"meta.k8s.io/v1"])) + pb_field(2, kind)) + pb_field(2, bytes(b[30:]))
    if r < 0.8:
        deep = b"x"
        for _ in range(random.randint(1, 300)):
            deep = pb_field(random.choice([1, 2, 3]), deep)
        return b"k8s\x00" + pb_field(1, pb_field(1, b"coordination.k8s.io/v1") + pb_field(2, b"Lease")) + pb_field(2, deep)
    return b"k8s\x00" + os.urandom(random.randint(0, 80))
codes = {}
for i in range(int(sys.argv[5])):
    c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
    m = random.choice(["POST","PUT","PATCH","DELETE","GET","GET"])
    p = random.choice(paths)
    if m != "POST": p += "/" + random.choice(names)
    elif random.random() < 0.1: p = "/api/v1/namespaces/default/serviceaccounts/%s/token" % random.choice(names)
    if random.random() < 0.3:
        p += "?" + random.choice(["fieldSelector=metadata.name%3Da", "labelSelector=a%3Db,!c", "watch=true&timeoutSeconds=1&resourceVersion=1", "dryRun=All", "pretty=true", "labelSelector=%3D%3D%3D", "fieldSelector=a.b.c.d.e", "watch=1&resourceVersion=abc", "watch=1&timeoutSeconds=1&allowWatchBookmarks=true&sendInitialEvents=true"])
    body = val() if random.random() < 0.8 else random.choice([None, 1, "s"])
    if isinstance(body, dict) and random.random() < 0.5:
        body.setdefault("metadata", {})
        if isinstance(body["metadata"], dict): body["metadata"]["name"] = random.choice(names)
    data = json.dumps(body).encode() if random.random() < 0.9 else os.urandom(random.randint(0,50))
    ct = random.choice(cts)
    if ct == "application/vnd.kubernetes.protobuf" and random.random() < 0.8:
        data = pb_body()
    accept = random.choice(["application/json", "application/vnd.kubernetes.protobuf", "application/vnd.kubernetes.protobuf, application/json", "text/plain", "*/*", ""])
    try:
        c.request(m, p, body=data if m != "GET" else None, headers={"Authorization": "Bearer " + token, "Content-Type": ct, "Accept": accept})
        r = c.getresponse(); r.read(); codes[r.status] = codes.get(r.status, 0) + 1
    except Exception as e:
        codes[type(e).__name__] = codes.get(type(e).__name__, 0) + 1
    c.close()
print(codes)
bad = {k: v for k, v in codes.items() if not isinstance(k, int) or k >= 500}
if bad:
    print("requests without a proper answer:", bad)
    sys.exit(1)
