#!/usr/bin/env bash
# Gatehouse benchmark: one command. See Benchmarks/README.md.
#
#   Benchmarks/run.sh
#
# Installs nginx, wrk, nghttp2-client (h2load) and openssl from Debian if missing (and
# scripts/requirements-test.txt from PyPI), builds Gatehouse in release mode into .build-release/, starts an
# upstream nginx, an nginx proxy (plain), an nginx proxy terminating TLS (HTTP/1.1 and HTTP/2, a throw-away
# EC P-256 certificate) and Gatehouse (plain and TLS listeners in one process) on 127.0.0.1 (free ports picked at
# run time), checks every target's correctness, then times them interleaved (wrk for HTTP/1.1, h2load for
# HTTP/2) and prints one markdown report (also written to Benchmarks/results/latest.md).
#
# Settings (environment):
#   DURATION=10s      each timed wrk run          ROUNDS=3         interleaved rounds (at least 1; 3+ advised)
#   THREADS=2         wrk threads                 CONNECTIONS=64   wrk keep-alive connections
#   WARMUP=3s         untimed warm-up per target  LAT_DURATION=5s  each 1-connection latency run
#   LAT_ROUNDS=1      latency rounds              MISS_TOKENS=20000 distinct tokens for the cache-miss run
#   IDLE_CONNS=1000   idle keep-alive connections opened against gatehouse at the end
#   H2_CLIENTS=8      h2load connections        H2_STREAMS=8     h2load concurrent streams per connection
#   H2_THREADS=2      h2load threads (default THREADS)   H2_WARMUP=1s  h2load --warm-up-time in each timed run
#   SKIP_BUILD=1      use the existing binary     GATEHOUSE_BIN=path  a gatehouse binary to use instead
#   ONLY="a b c"      time only these targets (no latency runs; a partial report, for quick comparisons)
#
# Exit status: 0 when every correctness gate passed and no run had a non-2xx response or a socket error.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-3s}
LAT_DURATION=${LAT_DURATION:-5s}
LAT_ROUNDS=${LAT_ROUNDS:-1}
MISS_TOKENS=${MISS_TOKENS:-20000}
IDLE_CONNS=${IDLE_CONNS:-1000}
H2_CLIENTS=${H2_CLIENTS:-8}
H2_STREAMS=${H2_STREAMS:-8}
H2_THREADS=${H2_THREADS:-$THREADS}
H2_WARMUP=${H2_WARMUP:-1s}
SKIP_BUILD=${SKIP_BUILD:-0}
ONLY=${ONLY:-}
RESULTS_DIR=$ROOT/Benchmarks/results

START_EPOCH=$(date +%s)
log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 2; }

# "10s", "2m", "500ms" or a plain number of seconds -> whole seconds (at least 1), for time bounds.
seconds_of() {
  local v=$1
  case $v in
    *ms) echo $(( (${v%ms} + 999) / 1000 )) ;;
    *s) echo "${v%s}" ;;
    *m) echo $(( ${v%m} * 60 )) ;;
    *h) echo $(( ${v%h} * 3600 )) ;;
    *) echo "$v" ;;
  esac
}
for v in DURATION WARMUP LAT_DURATION H2_WARMUP; do
  [[ ${!v} =~ ^[0-9]+(ms|s|m|h)?$ ]] || die "$v=${!v}: expected e.g. 10s"
done
for v in ROUNDS THREADS CONNECTIONS LAT_ROUNDS MISS_TOKENS IDLE_CONNS H2_CLIENTS H2_STREAMS H2_THREADS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v}: expected a whole number"
done
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 50 ] || die "ROUNDS must be 1..50"
[ "$LAT_ROUNDS" -le 50 ] || die "LAT_ROUNDS must be 0..50"
[ "$CONNECTIONS" -ge "$THREADS" ] || die "CONNECTIONS must be at least THREADS"
[ "$MISS_TOKENS" -ge 1 ] || die "MISS_TOKENS must be at least 1"
[ "$H2_THREADS" -ge 1 ] && [ "$H2_CLIENTS" -ge "$H2_THREADS" ] && [ "$H2_STREAMS" -ge 1 ] ||
  die "H2_THREADS must be at least 1, H2_CLIENTS at least H2_THREADS, H2_STREAMS at least 1"
H2_WARMUP_S=$(seconds_of "$H2_WARMUP")  # whole seconds: the same figure goes to h2load and to the CPU-sampling sleep

# ---------------------------------------------------------------------------------------------------------------
# 1. Tools
# ---------------------------------------------------------------------------------------------------------------
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
need=()
have nginx || need+=(nginx)
have wrk || need+=(wrk)
have h2load || need+=(nghttp2-client)
have curl || need+=(curl)
have openssl || need+=(openssl)
have python3 || need+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  log "installing from Debian: ${need[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
# joserfc (and the rest of scripts/requirements-test.txt) lives in the same virtual environment as the tests'
# (scripts/test.sh: .venv-test, rebuilt when the requirements change), so the machine's Python is left alone.
# Only tokens.py needs it; the other helpers use the standard library.
venv=.venv-test
if [ -f scripts/requirements-test.txt ]; then
  stamp="$venv/.requirements.sha256"
  want=$(sha256sum scripts/requirements-test.txt | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "creating $venv with scripts/requirements-test.txt"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
    echo "$want" >"$stamp"
  fi
else
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -c 'import joserfc' 2>/dev/null ||
    "$venv/bin/python" -m pip install -q --disable-pip-version-check joserfc
fi
JOSE_PY=$ROOT/$venv/bin/python

# ---------------------------------------------------------------------------------------------------------------
# 2. Release build (its own scratch path, so a debug build in .build is not disturbed)
# ---------------------------------------------------------------------------------------------------------------
BIN=${GATEHOUSE_BIN:-$ROOT/.build-release/release/gatehouse}
if [ -z "${GATEHOUSE_BIN:-}" ] && [ "$SKIP_BUILD" != 1 ]; then
  log "building gatehouse (release, .build-release)"
  swift build -c release --scratch-path .build-release --product gatehouse
fi
[ -x "$BIN" ] || die "no gatehouse binary at $BIN"

# ---------------------------------------------------------------------------------------------------------------
# 3. Scratch directory, processes, clean-up
# ---------------------------------------------------------------------------------------------------------------
WORK=$(mktemp -d -t gatehouse-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local p
  [ -n "${H2LOAD_PID:-}" ] && kill -TERM "$H2LOAD_PID" 2>/dev/null
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_WORK:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

meta() { printf '%s\t%s\n' "$1" "$2" >>"$WORK/meta.tsv"; }
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta nproc "$(nproc)"
meta cpu_model "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
meta kernel "$(uname -r)"
meta mem "$(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)"
meta load_start "$(uptime)"
meta clk_tck "$(getconf CLK_TCK)"
meta nginx_version "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
meta wrk_version "$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
meta h2load_version "$(h2load --version 2>&1 | head -1)"
meta openssl_version "$(openssl version 2>&1 | head -1)"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
git diff --quiet HEAD -- Sources Package.swift 2>/dev/null || dirty=" + uncommitted changes in Sources/"
if [ -n "${GATEHOUSE_BIN:-}" ]; then build_desc="binary $GATEHOUSE_BIN"; else build_desc="release build (.build-release)"; fi
meta gatehouse "commit $commit$dirty, $build_desc, 2 event loops (server.workers: 2), access log off"
for k in duration rounds threads connections warmup lat_duration lat_rounds h2_clients h2_streams h2_threads; do
  meta "$k" "$(eval echo "\$${k^^}")"
done
meta h2_warmup "${H2_WARMUP_S}s"

# Free ports on 127.0.0.1, chosen now (bind port 0, read the number, release).
read -r UP_PORT NP_PORT GH_PORT ADM_PORT GH2_PORT ADM2_PORT NT_PORT GHT_PORT GHT2_PORT < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(9):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)
log "ports: upstream $UP_PORT, nginx-proxy $NP_PORT, nginx-tls $NT_PORT, gatehouse $GH_PORT (TLS $GHT_PORT), admin $ADM_PORT; scratch $WORK"

# ---------------------------------------------------------------------------------------------------------------
# 4. Keys and tokens (joserfc)
# ---------------------------------------------------------------------------------------------------------------
log "minting keys and $MISS_TOKENS cache-miss tokens"
"$JOSE_PY" Benchmarks/tokens.py prepare --dir "$WORK/tokens" --miss-count "$MISS_TOKENS" --lifetime 14400
RS_TOKEN=$(cat "$WORK/tokens/rs.token")
ES_TOKEN=$(cat "$WORK/tokens/es.token")
MISS_GATE_TOKEN=$(tail -n 1 "$WORK/tokens/miss.tokens")
meta keys_via "keys from $(cat "$WORK/tokens/keys-via.txt"), tokens signed with joserfc"
meta miss_tokens "$MISS_TOKENS"

# ---------------------------------------------------------------------------------------------------------------
# 5. Servers
# ---------------------------------------------------------------------------------------------------------------
USER_LINE=""
[ "$(id -u)" = 0 ] && USER_LINE="user root;"   # workers must read the scratch directory

mkdir -p "$WORK/upstream/www" "$WORK/nginx-proxy" "$WORK/nginx-tls" "$WORK/tls"
head -c 12288 /dev/urandom | base64 -w 64 | head -c 16384 >"$WORK/upstream/www/16k"
[ "$(stat -c %s "$WORK/upstream/www/16k")" = 16384 ] || die "could not make the 16 KiB body"

cat >"$WORK/upstream/nginx.conf" <<EOF
$USER_LINE
worker_processes 1;
pid $WORK/upstream/nginx.pid;
error_log $WORK/upstream/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  default_type text/plain;
  server {
    listen 127.0.0.1:$UP_PORT backlog=4096;
    location / { return 200 "hello from the upstream\n"; }
    location ~ 16k\$ { root $WORK/upstream/www; default_type application/octet-stream; try_files /16k =404; }
  }
}
EOF

# The proxying nginx (nginx-proxy, nginx-tls): 2 workers and a keep-alive pool to the upstream; only the listen
# line (and the TLS lines) differ.
proxy_nginx_conf() { # name, listen parameters, extra server lines
cat <<EOF
$USER_LINE
worker_processes 2;
pid $WORK/$1/nginx.pid;
error_log $WORK/$1/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  upstream backend {
    server 127.0.0.1:$UP_PORT;
    keepalive 64;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
  }
  server {
    listen $2 backlog=4096;
$3
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
}
proxy_nginx_conf nginx-proxy "127.0.0.1:$NP_PORT" "" >"$WORK/nginx-proxy/nginx.conf"

# A throw-away certificate for 127.0.0.1 (EC P-256, self-signed, 2 days), the same for nginx-tls and gatehouse.
TLS_CERT=$WORK/tls/cert.pem
TLS_KEY=$WORK/tls/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$TLS_KEY" -out "$TLS_CERT" >"$WORK/tls/openssl.log" 2>&1 ||
  { cat "$WORK/tls/openssl.log" >&2; die "could not make the TLS certificate"; }
meta tls_cert "self-signed EC P-256 (prime256v1) certificate for IP:127.0.0.1 made by \`openssl req -x509\` at run time, the same file for nginx-tls and gatehouse"

# nginx-tls: nginx-proxy's settings (2 workers, the same keep-alive pool to the same upstream) behind a TLS
# listener offering HTTP/2 and HTTP/1.1 by ALPN (nginx 1.22 syntax: "listen ... ssl http2"), TLS 1.2 minimum
# like gatehouse's default. keepalive_requests also bounds the requests of an HTTP/2 connection (nginx >= 1.19.7).
proxy_nginx_conf nginx-tls "127.0.0.1:$NT_PORT ssl http2" "    ssl_certificate $TLS_CERT;
    ssl_certificate_key $TLS_KEY;
    ssl_protocols TLSv1.2 TLSv1.3;" >"$WORK/nginx-tls/nginx.conf"

gatehouse_config() { # listen-port admin-port tls-port
cat <<EOF
version: 1
server:
  listen: ["127.0.0.1:$1"]
  admin_listen: "127.0.0.1:$2"
  workers: 2
  access_log:
    format: off
  tls:
    listen: ["127.0.0.1:$3"]
    certificate_file: $TLS_CERT
    private_key_file: $TLS_KEY
    min_version: "1.2"
    alpn: [h2, http/1.1]
  http2:
    cleartext: false
    max_concurrent_streams: 100
providers:
  - id: bench-rs
    issuer: https://rs.bench.gatehouse.invalid
    jwks_uri: file://$WORK/tokens/jwks-rs.json
    audiences: [gatehouse-bench]
    client_id: gatehouse-bench
    algorithms: [RS256]
  - id: bench-es
    issuer: https://es.bench.gatehouse.invalid
    jwks_uri: file://$WORK/tokens/jwks-es.json
    audiences: [gatehouse-bench]
    algorithms: [ES256]
routes:
  - id: none
    match: {path: /none}
    upstream: http://127.0.0.1:$UP_PORT
    auth: none
  - id: rs
    match: {path: /rs}
    upstream: http://127.0.0.1:$UP_PORT
    auth: jwt
    providers: [bench-rs]
  - id: es
    match: {path: /es}
    upstream: http://127.0.0.1:$UP_PORT
    auth: jwt
    providers: [bench-es]
  - id: miss
    match: {path: /miss}
    upstream: http://127.0.0.1:$UP_PORT
    auth: jwt
    providers: [bench-rs]
  - id: session
    match: {path: /sess}
    upstream: http://127.0.0.1:$UP_PORT
    auth: session
    providers: [bench-rs]
session:
  secrets: ["$SESSION_SECRET"]
  secure: false
EOF
}
SESSION_SECRET=$(head -c 32 /dev/urandom | base64)
gatehouse_config "$GH_PORT" "$ADM_PORT" "$GHT_PORT" >"$WORK/gatehouse.yaml"
gatehouse_config "$GH2_PORT" "$ADM2_PORT" "$GHT2_PORT" >"$WORK/gatehouse-fresh.yaml"
# A session cookie sealed with the config's secret (what a browser holds after the OIDC login).
SESSION_COOKIE=$("$BIN" mint-session -c "$WORK/gatehouse.yaml" --provider bench-rs \
  --claims '{"sub":"bench-user","email":"bench@example.com","groups":["staff","bench"]}') || die "mint-session failed"

start_nginx() { # name -> pid of the master
  local dir=$WORK/$1
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
  PIDS+=($!)
}
wait_http() { # url, seconds, [curl args...]
  local url=$1 secs=$2 i
  shift 2
  for i in $(seq $(( secs * 10 ))); do
    curl -s -o /dev/null --max-time 1 "$@" "$url" && return 0
    sleep 0.1
  done
  return 1
}

start_nginx upstream
UP_PID=${PIDS[-1]}
start_nginx nginx-proxy
NP_PID=${PIDS[-1]}
start_nginx nginx-tls
NT_PID=${PIDS[-1]}
"$BIN" serve -c "$WORK/gatehouse.yaml" >"$WORK/gatehouse.log" 2>&1 &
GH_PID=$!
PIDS+=("$GH_PID")

wait_http "http://127.0.0.1:$UP_PORT/" 20 || { cat "$WORK/upstream/error.log" >&2; die "upstream nginx did not start"; }
wait_http "http://127.0.0.1:$NP_PORT/" 20 || { cat "$WORK/nginx-proxy/error.log" >&2; die "nginx-proxy did not start"; }
wait_http "https://127.0.0.1:$NT_PORT/" 20 -k || { cat "$WORK/nginx-tls/error.log" >&2; die "nginx-tls did not start"; }
wait_ready() { # pid admin-port log
  local _
  for _ in $(seq 300); do
    kill -0 "$1" 2>/dev/null || break
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$2/readyz")" = 200 ] && return 0
    sleep 0.1
  done
  tail -20 "$3" >&2
  return 1
}
wait_ready "$GH_PID" "$ADM_PORT" "$WORK/gatehouse.log" || die "gatehouse did not become ready"
UP_WORKERS=$(pgrep -P "$UP_PID" | tr '\n' ' ')
NP_WORKERS=$(pgrep -P "$NP_PID" | tr '\n' ' ')
NT_WORKERS=$(pgrep -P "$NT_PID" | tr '\n' ' ')
[ -n "$UP_WORKERS" ] && [ -n "$NP_WORKERS" ] && [ -n "$NT_WORKERS" ] || die "could not find the nginx worker processes"
log "upstream pid $UP_PID (workers $UP_WORKERS), nginx-proxy pid $NP_PID (workers $NP_WORKERS), nginx-tls pid $NT_PID (workers $NT_WORKERS), gatehouse pid $GH_PID"

# ---------------------------------------------------------------------------------------------------------------
# 6. Targets: name -> URL, kind (plain | TOKENVAR | miss | session), proxy process, load generator (wrk | h2load),
#    protocol (http1 | h1 over TLS | h2 over TLS), ratio baseline
# ---------------------------------------------------------------------------------------------------------------
UP=http://127.0.0.1:$UP_PORT
NP=http://127.0.0.1:$NP_PORT
GH=http://127.0.0.1:$GH_PORT
NT=https://127.0.0.1:$NT_PORT
GHT=https://127.0.0.1:$GHT_PORT
declare -A URL KIND PROXY TOOL PROTO
URL[direct]=$UP/;                    KIND[direct]=plain;              PROXY[direct]=none
URL[nginx-proxy]=$NP/;               KIND[nginx-proxy]=plain;         PROXY[nginx-proxy]=nginx
URL[gatehouse-none]=$GH/none/;       KIND[gatehouse-none]=plain;      PROXY[gatehouse-none]=gatehouse
URL[gatehouse-rs256]=$GH/rs/;        KIND[gatehouse-rs256]=RS_TOKEN;  PROXY[gatehouse-rs256]=gatehouse
URL[gatehouse-es256]=$GH/es/;        KIND[gatehouse-es256]=ES_TOKEN;  PROXY[gatehouse-es256]=gatehouse
URL[gatehouse-miss]=$GH/miss/;       KIND[gatehouse-miss]=miss;       PROXY[gatehouse-miss]=gatehouse
URL[gatehouse-session]=$GH/sess/;    KIND[gatehouse-session]=session; PROXY[gatehouse-session]=gatehouse
URL[direct-16k]=$UP/16k;             KIND[direct-16k]=plain;          PROXY[direct-16k]=none
URL[nginx-proxy-16k]=$NP/16k;        KIND[nginx-proxy-16k]=plain;     PROXY[nginx-proxy-16k]=nginx
URL[gatehouse-none-16k]=$GH/none/16k; KIND[gatehouse-none-16k]=plain; PROXY[gatehouse-none-16k]=gatehouse
# HTTPS: HTTP/1.1 with wrk (CONNECTIONS keep-alive connections, no ALPN), HTTP/2 with h2load (H2_CLIENTS
# connections x H2_STREAMS concurrent streams, ALPN h2), against nginx-tls and gatehouse's TLS listener.
for v in h1 h2; do
  URL[nginx-tls-$v]=$NT/;               KIND[nginx-tls-$v]=plain;              PROXY[nginx-tls-$v]=nginx-tls
  URL[gatehouse-tls-none-$v]=$GHT/none/; KIND[gatehouse-tls-none-$v]=plain;    PROXY[gatehouse-tls-none-$v]=gatehouse
  URL[gatehouse-tls-rs256-$v]=$GHT/rs/; KIND[gatehouse-tls-rs256-$v]=RS_TOKEN; PROXY[gatehouse-tls-rs256-$v]=gatehouse
  for t in nginx-tls-$v gatehouse-tls-none-$v gatehouse-tls-rs256-$v; do
    PROTO[$t]=$v
    if [ $v = h2 ]; then TOOL[$t]=h2load; else TOOL[$t]=wrk; fi
  done
done
for t in "${!URL[@]}"; do : "${TOOL[$t]:=wrk}" "${PROTO[$t]:=http}"; done
TARGETS=(direct nginx-proxy gatehouse-none gatehouse-rs256 gatehouse-es256 gatehouse-session gatehouse-miss
         direct-16k nginx-proxy-16k gatehouse-none-16k
         nginx-tls-h1 gatehouse-tls-none-h1 gatehouse-tls-rs256-h1 nginx-tls-h2 gatehouse-tls-none-h2
         gatehouse-tls-rs256-h2)
LAT_TARGETS=(direct nginx-proxy gatehouse-none gatehouse-rs256 gatehouse-es256 gatehouse-session
             direct-16k nginx-proxy-16k gatehouse-none-16k)
if [ -n "$ONLY" ]; then  # a quick comparison of a few targets (the report is then partial)
  read -ra TARGETS <<<"$ONLY"
  LAT_TARGETS=()
fi
for t in "${TARGETS[@]}"; do
  [ -n "${URL[$t]:-}" ] || die "unknown target $t (known: ${!URL[*]})"
  [ "${TOOL[$t]}" = wrk ] || [ "${KIND[$t]}" != miss ] || die "$t: the cache-miss token list needs wrk"
done
meta targets "${TARGETS[*]}"
meta lat_targets "${LAT_TARGETS[*]}"
proxy_of=""; baseline_of=""; tool_of=""; proto_of=""
for t in "${TARGETS[@]}"; do
  proxy_of+="$t=${PROXY[$t]} "
  tool_of+="$t=${TOOL[$t]} "
  proto_of+="$t=${PROTO[$t]} "
  if [ "${PROTO[$t]}" != http ]; then baseline_of+="$t=nginx-tls-${PROTO[$t]} "
  elif [[ $t == *-16k ]]; then baseline_of+="$t=nginx-proxy-16k "; else baseline_of+="$t=nginx-proxy "; fi
done
meta proxy_of "$proxy_of"
meta baseline_of "$baseline_of"
meta tool_of "$tool_of"
meta proto_of "$proto_of"

# ---------------------------------------------------------------------------------------------------------------
# 7. Correctness gates
# ---------------------------------------------------------------------------------------------------------------
tamper() { # flip one character in the middle of the signature
  local token=$1 sig=${1##*.} head=${1%.*}
  local i=$(( ${#sig} / 2 )) c r
  c=${sig:i:1}
  r=A; [ "$c" = A ] && r=B
  printf '%s.%s%s%s' "$head" "${sig:0:i}" "$r" "${sig:i+1}"
}
tamper_cookie() { # flip one character in the middle of the first cookie's sealed value (a valid base64url text)
  local first=${1%%;*} name value i c r
  name=${first%%=*}; value=${first#*=}
  i=$(( ${#value} / 2 )); c=${value:i:1}
  r=A; [ "$c" = A ] && r=B
  printf '%s=%s%s%s' "$name" "${value:0:i}" "$r" "${value:i+1}"
}
# Over TLS: curl -k (the certificate is self-signed) with --http1.1 or --http2 (ALPN), so every probe of a TLS
# target goes over the protocol its timed runs use; the gate also checks the HTTP version curl ended up with.
declare -a PROBE_ARGS=()
probe() { # url [curl args...] -> "status size http-version" (PROBE_ARGS added)
  local url=$1; shift
  curl -s -o /dev/null -w '%{http_code} %{size_download} %{http_version}\n' --max-time 5 ${PROBE_ARGS[@]+"${PROBE_ARGS[@]}"} \
    "$@" "$url" || echo "000 0 none"
}
tls_info() { # url curl-args... -> "TLSv1.3 / TLS_AES_256_GCM_SHA384, ALPN h2" as curl -v saw it
  local url=$1; shift
  { curl -sv -o /dev/null --max-time 5 "$@" "$url" 2>&1 || true; } | awk '
    /SSL connection using/ { sub(/.*SSL connection using /, ""); tls = $0 }
    /ALPN: server accepted/ { sub(/.*ALPN: server accepted /, ""); alpn = $0 }
    /ALPN: server did not agree/ { alpn = "none" }
    END { printf "%s, ALPN %s", (tls == "" ? "no TLS" : tls), (alpn == "" ? "none" : alpn) }'
}
declare -A GATE_OK
for t in "${TARGETS[@]}"; do
  url=${URL[$t]}
  want_size=""
  [[ $t == *-16k ]] && want_size=16384
  detail=""
  PROBE_ARGS=()
  want_ver=""
  ver=""
  case ${PROTO[$t]} in
    h1) PROBE_ARGS=(-k --http1.1); want_ver=1.1 ;;
    h2) PROBE_ARGS=(-k --http2); want_ver=2 ;;
  esac
  case ${KIND[$t]} in
    plain)
      read -r code size ver < <(probe "$url")
      [ "$code" = 200 ] || detail="expected 200, got $code"
      if [ -z "$detail" ] && [ -n "$want_size" ] && [ "$size" != "$want_size" ]; then
        detail="expected a $want_size-byte body, got $size bytes"
      fi
      ;;
    session)
      read -r good _ < <(probe "$url" -H "Cookie: $SESSION_COOKIE")
      read -r bad _ < <(probe "$url" -H "Cookie: $(tamper_cookie "$SESSION_COOKIE")")
      read -r none _ < <(probe "$url")
      [ "$good" = 200 ] || detail="valid session cookie: expected 200, got $good"
      [ "$bad" = 401 ] || detail="${detail:+$detail; }tampered cookie: expected 401, got $bad"
      [ "$none" = 401 ] || detail="${detail:+$detail; }no cookie: expected 401, got $none"
      ;;
    *)
      if [ "${KIND[$t]}" = miss ]; then token=$MISS_GATE_TOKEN; else token=${!KIND[$t]}; fi
      read -r good _ ver < <(probe "$url" -H "Authorization: Bearer $token")
      read -r bad _ < <(probe "$url" -H "Authorization: Bearer $(tamper "$token")")
      read -r none _ < <(probe "$url")
      [ "$good" = 200 ] || detail="valid token: expected 200, got $good"
      [ "$bad" = 401 ] || detail="${detail:+$detail; }tampered token: expected 401, got $bad"
      [ "$none" = 401 ] || detail="${detail:+$detail; }no token: expected 401, got $none"
      ;;
  esac
  if [ -n "$want_ver" ]; then
    [ "${ver:-}" = "$want_ver" ] || detail="${detail:+$detail; }expected HTTP/$want_ver, curl used HTTP/${ver:-?}"
    info=$(tls_info "$url" "${PROBE_ARGS[@]}")
    printf '%s\t%s\n' "$t" "$info" >>"$WORK/tls.tsv"
    log "$t: $info"
  fi
  if [ -z "$detail" ]; then
    GATE_OK[$t]=1
    printf '%s\tok\t\n' "$t" >>"$WORK/gates.tsv"
    log "gate $t: ok"
  else
    printf '%s\tFAILED\t%s\n' "$t" "$detail" >>"$WORK/gates.tsv"
    log "gate $t: FAILED ($detail)"
  fi
done

# ---------------------------------------------------------------------------------------------------------------
# 8. Timed runs
# ---------------------------------------------------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { # pids... -> utime+stime summed (all threads of each process)
  local total=0 p s
  for p in "$@"; do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }
    set -- $s
    total=$(( total + ${12} + ${13} ))
  done
  echo $total
}
hwm_reset() { local p; for p in "$@"; do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done; }
hwm_kib() { local p; for p in "$@"; do awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null; done | awk '{s+=$1} END {print s+0}'; }
proxy_pids() {
  case $1 in
    nginx) echo "$NP_WORKERS" ;;
    nginx-tls) echo "$NT_WORKERS" ;;
    gatehouse) echo "$GH_PID" ;;
    *) echo "" ;;
  esac
}

MISS_OFFSET=0
RUN_NO=0
run_wrk() { # phase target round threads connections duration
  local phase=$1 t=$2 round=$3 threads=$4 conns=$5 dur=$6
  local url=${URL[$t]} out pids p0 p1 u0 u1 hwm="" miss_first="" miss_sent=""
  RUN_NO=$(( RUN_NO + 1 ))
  out=$WORK/wrk-$RUN_NO-$phase-$t-$round.txt
  local args=(-t"$threads" -c"$conns" -d"$dur" --latency --timeout 5s)
  case ${KIND[$t]} in
    plain) ;;
    miss) args+=(-s "$ROOT/Benchmarks/miss.lua") ;;
    session) args+=(-H "Cookie: $SESSION_COOKIE") ;;
    *) args+=(-H "Authorization: Bearer ${!KIND[$t]}") ;;
  esac
  read -r -a pids <<<"$(proxy_pids "${PROXY[$t]}")"
  [ ${#pids[@]} -gt 0 ] && hwm_reset "${pids[@]}"
  p0=$(cpu_ticks "${pids[@]}"); u0=$(cpu_ticks $UP_WORKERS)
  MISS_TOKENS_FILE=$WORK/tokens/miss.tokens MISS_OFFSET=$MISS_OFFSET MISS_STATE_FILE=$WORK/miss-state \
    WRK_THREADS=$threads timeout -k 5 $(( $(seconds_of "$dur") + 30 )) wrk "${args[@]}" "$url" >"$out" 2>&1 || true
  p1=$(cpu_ticks "${pids[@]}"); u1=$(cpu_ticks $UP_WORKERS)
  [ ${#pids[@]} -gt 0 ] && hwm=$(hwm_kib "${pids[@]}")
  if [ "${KIND[$t]}" = miss ] && [ -s "$WORK/miss-state" ]; then
    read -r miss_first miss_sent <"$WORK/miss-state"
    MISS_OFFSET=$(( MISS_OFFSET + miss_sent ))
    rm -f "$WORK/miss-state"
  fi
  kill -0 "$GH_PID" 2>/dev/null || log "warning: gatehouse is no longer running"
  if [ "$phase" != warmup ]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$t" "$round" "$out" \
      "$([ ${#pids[@]} -gt 0 ] && echo $(( p1 - p0 )))" "$(( u1 - u0 ))" "$hwm" "$miss_first" "$miss_sent" \
      >>"$WORK/runs.tsv"
    log "$phase $t round $round: $(awk '/Requests\/sec/ {print $2 " req/s"}' "$out")$(grep -E 'Non-2xx|Socket errors' "$out" | tr -s ' ' | tr '\n' ';' | sed 's/^/ /')"
  fi
}

# HTTP/2 over TLS: h2load, H2_CLIENTS connections x H2_STREAMS concurrent streams, H2_THREADS threads, for a fixed
# duration (-D). Timed runs start with h2load's own warm-up (--warm-up-time, H2_WARMUP: connections, TLS
# handshakes, HTTP/2 settings and window updates fall into it); its requests are not counted, so the CPU readings
# are taken after sleeping the same warm-up time, i.e. over (close to) the measured window only.
H2LOAD_PID=""
run_h2load() { # phase target round duration
  local phase=$1 t=$2 round=$3 dur=$4
  local url=${URL[$t]} out pids p0 p1 u0 u1 hwm="" warm=0
  RUN_NO=$(( RUN_NO + 1 ))
  out=$WORK/h2load-$RUN_NO-$phase-$t-$round.txt
  local args=(-t"$H2_THREADS" -c"$H2_CLIENTS" -m"$H2_STREAMS" -D "$dur")
  [ "$phase" != warmup ] && warm=$H2_WARMUP_S
  [ "$warm" -gt 0 ] && args+=(--warm-up-time "${warm}s")
  case ${KIND[$t]} in
    plain) ;;
    session) args+=(-H "cookie: $SESSION_COOKIE") ;;
    *) args+=(-H "authorization: Bearer ${!KIND[$t]}") ;;
  esac
  read -r -a pids <<<"$(proxy_pids "${PROXY[$t]}")"
  [ ${#pids[@]} -gt 0 ] && hwm_reset "${pids[@]}"
  timeout -k 5 $(( $(seconds_of "$dur") + warm + 30 )) h2load "${args[@]}" "$url" >"$out" 2>&1 &
  H2LOAD_PID=$!
  [ "$warm" -gt 0 ] && sleep "$warm"
  p0=$(cpu_ticks "${pids[@]}"); u0=$(cpu_ticks $UP_WORKERS)
  wait "$H2LOAD_PID" || true
  H2LOAD_PID=""
  p1=$(cpu_ticks "${pids[@]}"); u1=$(cpu_ticks $UP_WORKERS)
  [ ${#pids[@]} -gt 0 ] && hwm=$(hwm_kib "${pids[@]}")
  kill -0 "$GH_PID" 2>/dev/null || log "warning: gatehouse is no longer running"
  if [ "$phase" != warmup ]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$t" "$round" "$out" \
      "$([ ${#pids[@]} -gt 0 ] && echo $(( p1 - p0 )))" "$(( u1 - u0 ))" "$hwm" "" "" >>"$WORK/runs.tsv"
    log "$phase $t round $round: $(awk '/^finished in/ {print $4 " req/s"}' "$out")$(grep -E '^(requests|status codes):' "$out" | tr -s ' ' | tr '\n' ';' | sed 's/^/ /')"
  fi
}
run_target() { # phase target round duration (THREADS x CONNECTIONS for wrk)
  if [ "${TOOL[$2]}" = h2load ]; then run_h2load "$1" "$2" "$3" "$4"; else run_wrk "$1" "$2" "$3" "$THREADS" "$CONNECTIONS" "$4"; fi
}

GATED=()
for t in "${TARGETS[@]}"; do [ -n "${GATE_OK[$t]:-}" ] && GATED+=("$t"); done
LAT_GATED=()
for t in "${LAT_TARGETS[@]}"; do [ -n "${GATE_OK[$t]:-}" ] && LAT_GATED+=("$t"); done

log "warm-up: $WARMUP per target"
for t in "${GATED[@]}"; do run_target warmup "$t" 0 "$WARMUP"; done
for round in $(seq "$ROUNDS"); do
  log "round $round of $ROUNDS"
  for t in "${GATED[@]}"; do run_target main "$t" "$round" "$DURATION"; done
done
for round in $(seq "$LAT_ROUNDS"); do
  log "latency round $round of $LAT_ROUNDS"
  for t in "${LAT_GATED[@]}"; do run_wrk lat "$t" "$round" 1 1 "$LAT_DURATION"; done
done
meta load_after_runs "$(uptime)"


# ---------------------------------------------------------------------------------------------------------------
# 9. Idle keep-alive connections
# ---------------------------------------------------------------------------------------------------------------
# Twice: on a fresh gatehouse process (the marginal cost of a connection: nothing freed earlier to reuse), and on
# the process that served the timed runs.
if [ -n "${GATE_OK[gatehouse-rs256]:-}" ] && [ "$IDLE_CONNS" -gt 0 ]; then
  "$BIN" serve -c "$WORK/gatehouse-fresh.yaml" >"$WORK/gatehouse-fresh.log" 2>&1 &
  GH2_PID=$!
  PIDS+=("$GH2_PID")
  if wait_ready "$GH2_PID" "$ADM2_PORT" "$WORK/gatehouse-fresh.log"; then
    log "idle connections: $IDLE_CONNS to a fresh gatehouse"
    timeout -k 5 120 python3 Benchmarks/idle_conns.py --pid "$GH2_PID" --port "$GH2_PORT" --path /rs/ \
      --token-file "$WORK/tokens/rs.token" --count "$IDLE_CONNS" >"$WORK/idle-fresh.json" || true
    log "idle (fresh process): $(cat "$WORK/idle-fresh.json")"
  else
    log "the fresh gatehouse did not become ready"
  fi
  kill -TERM "$GH2_PID" 2>/dev/null || true
  log "idle connections: $IDLE_CONNS to the gatehouse that served the timed runs"
  timeout -k 5 120 python3 Benchmarks/idle_conns.py --pid "$GH_PID" --port "$GH_PORT" --path /rs/ \
    --token-file "$WORK/tokens/rs.token" --count "$IDLE_CONNS" >"$WORK/idle.json" || true
  log "idle (benchmark process): $(cat "$WORK/idle.json")"
else
  meta idle_skipped "the gatehouse-rs256 gate failed or IDLE_CONNS=0"
fi

kill -0 "$GH_PID" 2>/dev/null || log "warning: gatehouse exited during the benchmark; see its log below"
meta load_end "$(uptime)"
END_EPOCH=$(date +%s)
ELAPSED=$(( END_EPOCH - START_EPOCH ))
meta wall "$(( ELAPSED / 60 )) min $(( ELAPSED % 60 )) s, from start to report (including install, build and minting)"

mkdir -p "$RESULTS_DIR"
status=0
python3 Benchmarks/report.py "$WORK" --out "$RESULTS_DIR/latest.md" || status=$?
if grep -qiE '"level":"(error|critical)"|fatal' "$WORK/gatehouse.log" 2>/dev/null; then
  log "gatehouse logged errors:"
  grep -iE '"level":"(error|critical)"|fatal' "$WORK/gatehouse.log" | tail -5 >&2
fi
log "report written to Benchmarks/results/latest.md"
exit $status
