#!/usr/bin/env bash
# weft's TLS to a login server, with a custom CA (issue 3, test 9).
#
# A tiny HTTPS server (python3 http.server + ssl) on 127.0.0.1 inside one lab
# namespace, with a certificate from a CA made here with openssl, answers
# GET /key?v=N with a valid {"publicKey":"mkey:<64 hex>"} and 404s everything
# else (so the ts2021 upgrade, POST /ts2021, fails).
#   a) weftd --ca-file ca.pem: `weft up --login-server https://127.0.0.1:PORT
#      --auth-key x --timeout 5` fails, but NOT with a TLS/certificate error:
#      the server saw a /key request over TLS and answered 200, weft's status
#      Health names the failing upgrade/ts2021 step.
#   b) weftd without --ca-file: the same `weft up` fails, and weft's Health
#      (or its log) names a certificate problem; the server never answered /key.
#
#   tests/interop/weft_tls.sh
# Exit 0 when both pass, 1 on failure, 77 when skipped.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
# shellcheck source=weft_lib.sh
source "$HERE/weft_lib.sh"
# shellcheck disable=SC2034 # read by skip() in lib.sh
LAB_SKIP_RC=77
weft_need_bin
for t in python3 openssl; do
    command -v "$t" >/dev/null || skip "'$t' not found (the TLS lab needs python3 and openssl)"
done
LAB_TIMEOUT=${LAB_TIMEOUT:-120}
lab_init
weft_init
lab_add_ns w1 "$LAB_SUBNET.21"
PORT=8443
D=$LAB_DIR/tls
mkdir -p "$D"

# ---------------------------------------------------------------- CA and cert
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=weft interop test CA" -keyout "$D/ca.key" -out "$D/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=127.0.0.1" -keyout "$D/server.key" -out "$D/server.csr" 2>/dev/null
cat >"$D/server.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1
EOF
openssl x509 -req -in "$D/server.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial \
    -days 2 -extfile "$D/server.ext" -out "$D/server.pem" 2>/dev/null
log "CA $D/ca.pem, server cert for IP 127.0.0.1"

# ---------------------------------------------------------------- the server
MKEY=$(openssl rand -hex 32)
cat >"$D/server.py" <<'PY'
import http.server, json, ssl, sys
port, cert, key, mkey = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, code, body, ctype="application/json"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True
    def do_GET(self):
        if self.path.startswith("/key?v="):
            self.answer(200, json.dumps({"publicKey": "mkey:" + mkey}))
        else:
            self.answer(404, "404 page not found\n", "text/plain")
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.answer(404, "404 page not found\n", "text/plain")
    def log_message(self, fmt, *args):
        sys.stderr.write("REQ %s %s\n" % (self.client_address[0], fmt % args))
        sys.stderr.flush()

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
PY
lab_bg w1 "$D/server.log" python3 -u "$D/server.py" "$PORT" "$D/server.pem" "$D/server.key" "$MKEY"
wait_for "HTTPS server on 127.0.0.1:$PORT" 15 lab_exec w1 curl -fsS --cacert "$D/ca.pem" \
    "https://127.0.0.1:$PORT/key?v=1" || { cat "$D/server.log" >&2; die "the HTTPS server did not start"; }
[[ $(lab_exec w1 curl -s -o /dev/null -w '%{http_code}' --cacert "$D/ca.pem" "https://127.0.0.1:$PORT/ts2021") == 404 ]] \
    || die "the HTTPS server does not 404 /ts2021"
log "HTTPS server up on 127.0.0.1:$PORT (in $(lab_ns w1)); server key mkey:${MKEY:0:8}..."

URL=https://127.0.0.1:$PORT
key_requests() { grep -c 'REQ 127.0.0.1 "GET /key?v=[0-9]* HTTP/1.1" 200' "$D/server.log" || true; }
CERT_RE='certificate|UnknownIssuer|unknown ?issuer|BadCertificate|invalid peer certificate'

# run_case NAME WEFTD_FLAGS... : fresh weftd, weft up; sets OUT RC ST
run_case() {
    local name=$1; shift
    start_weftd "$name" "$@"
    local t0=$SECONDS
    RC=0
    OUT=$(wf "$name" up --login-server "$URL" --auth-key x --hostname "$name" --timeout 5 2>&1) || RC=$?
    log "$name: weft up exit $RC after $((SECONDS - t0))s: $OUT"
    # Let a retry or two happen, then read the status.
    sleep 1
    ST=$(wf_status "$name")
    log "$name: status $(jq -c '{BackendState, Health, LoginError}' <<<"$ST")"
    log "$name: weftd log: $(grep -E 'WARN|ERROR' "$(wf_dir "$name")/weftd.log" | sort -u -k4 | head -3 | tr '\n' ' ')"
    stop_weftd "$name"
}

results=() failed=0
record() { results+=("RESULT tls $1 $2"); [[ $2 == PASS ]] || failed=1; }

# a) with the CA: TLS and /key work, the upgrade fails.
before=$(key_requests)
(
    run_case w1 --ca-file "$D/ca.pem"
    [[ $RC != 0 ]] || die "weft up succeeded against a server without ts2021"
    health=$(jq -r '[.Health[]?, (.LoginError // "")] | join(" | ")' <<<"$ST")
    if grep -Eiq "$CERT_RE" <<<"$health $OUT"; then die "TLS/certificate error with --ca-file: $health / $OUT"; fi
    (($(key_requests) > before)) || die "the server never answered a /key request from weft over TLS"
    grep -Eiq 'upgrade|ts2021|101|404|switching' <<<"$health $OUT" \
        || die "Health does not name the failed upgrade/ts2021 step: $health / $OUT"
    log "with --ca-file: /key served $(($(key_requests) - before)) time(s); failure: $health"
    grep -E 'REQ .*(ts2021|/key)' "$D/server.log" | tail -4 >&2
) && record 9a-ca-file-tls-ok-upgrade-fails PASS || record 9a-ca-file-tls-ok-upgrade-fails FAIL

# b) without the CA: a certificate error, no /key answered.
# shellcheck disable=SC2034,SC2154 # associative, declared in weft_lib.sh
WF_NETNS[w1b]=w1
before=$(key_requests)
(
    run_case w1b
    [[ $RC != 0 ]] || die "weft up succeeded without the CA"
    health=$(jq -r '[.Health[]?, (.LoginError // "")] | join(" | ")' <<<"$ST")
    logtext=$(grep -Ei "$CERT_RE" "$LAB_DIR/w1b/weftd.log" | head -3 || true)
    grep -Eiq "$CERT_RE" <<<"$health $OUT" || {
        [[ -n $logtext ]] && log "note: certificate problem only in the log, not in Health: $logtext"
        [[ -n $logtext ]] || die "no certificate problem in Health, weft up's output or the log: $health / $OUT"
    }
    (($(key_requests) == before)) || die "the server answered /key although weft should not trust it"
    log "without --ca-file: $health"
) && record 9b-no-ca-file-certificate-error PASS || record 9b-no-ca-file-certificate-error FAIL

printf '%s\n' "${results[@]}"
[[ $failed == 0 ]] || die "TLS lab: some tests failed (logs in $LAB_DIR)"
log "PASS: tls"
