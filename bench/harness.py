"""What the benchmark's scenarios (bench/driver.py) run on: free ports, the processes it
starts and stops (Bench: mosquitto, the sinks, ldisd, the load generator; Postgres), the
partners file, percentiles, RSS and CPU of a process, the disk's own fsync, ldisd's stage
histograms, and ten years of history for the dashboard scenario."""
import glob
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid


HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))]


def rss_kib(pid, field="VmRSS"):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def disk_sync_ms(folder, rate, samples=100):
    """What one durable commit's fsync costs on this disk at the latency scenario's pace: an
    8 KiB write and fdatasync every 1/rate s, in the folder ldisd's database is in. On a
    virtual disk it grows with the time since the last one (on the machine of issue 14:
    0.13 ms back to back, 0.25 ms after 1 ms, 0.62 ms after 20 ms), so it is a floor under
    the first email that the same run can show beside it."""
    path = os.path.join(folder, "sync-probe")
    took = []
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        block = b"x" * 8192
        os.pwrite(fd, block, 0)
        os.fsync(fd)
        for _ in range(samples):
            time.sleep(1 / rate)
            start = time.perf_counter()
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            took.append((time.perf_counter() - start) * 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    return {"p50": pct(took, .5), "p99": pct(took, .99)}


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


class Bench:
    def __init__(self, build, work):
        self.build = build
        self.work = work
        self.procs = []
        self.mqtt_port = free_port()
        conf = os.path.join(work, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.mqtt_port} 127.0.0.1\nallow_anonymous true\n"
                    "max_queued_messages 0\nmax_inflight_messages 0\nset_tcp_nodelay true\n")
            if os.getuid() == 0:
                f.write("user root\n")
        self.start(["/usr/sbin/mosquitto", "-c", conf], "mosquitto.log")
        wait_port(self.mqtt_port)
        self.uri = f"tcp://127.0.0.1:{self.mqtt_port}"

    # Each process in a group of its own, and nothing of the group outlives it: an ldisd
    # under LDIS_BENCH_WRAP (strace, perf) is the wrapper's child, and was left running when
    # only the wrapper was signalled, using a core through every later run. `group`: SIGTERM
    # goes to the whole group (the wrapper and ldisd, which then stops as it should).
    def start(self, argv, log, group=False, **kw):
        p = subprocess.Popen(argv, stdout=open(os.path.join(self.work, log), "w"),
                             stderr=subprocess.STDOUT, start_new_session=True, **kw)
        p.group_stop = group
        self.procs.append(p)
        return p

    @staticmethod
    def signal_group(p, sig):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, p, timeout=30):
        if p.poll() is None:
            if getattr(p, "group_stop", False):
                self.signal_group(p, signal.SIGTERM)
            else:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(p, signal.SIGKILL)
                p.wait()
        self.signal_group(p, signal.SIGKILL)  # whatever it left behind
        if p in self.procs:
            self.procs.remove(p)

    def close(self):
        for p in reversed(list(self.procs)):
            self.stop(p)

    def tool(self, name):
        return os.path.join(self.build, "bench", name)

    def loadgen(self, *args):
        out = subprocess.run([self.tool("ldis_loadgen"), "--uri", self.uri, *map(str, args)],
                             capture_output=True, text=True, timeout=900)
        if not out.stdout.strip():
            raise RuntimeError("ldis_loadgen failed: " + out.stderr)
        return json.loads(out.stdout)

    def sink(self, protocol, name, *extra):
        out = os.path.join(self.work, f"{name}.jsonl")
        p = subprocess.Popen([self.tool("ldis_sink"), protocol, "--out", out, *extra],
                             stdout=subprocess.PIPE, stderr=open(os.path.join(self.work, f"{name}.log"), "w"),
                             text=True, start_new_session=True)
        self.procs.append(p)
        port = json.loads(p.stdout.readline())["port"]
        return p, port, out

    def ldisd(self, name, *sets, partners=None, keep_db=False):
        db = os.path.join(self.work, f"{name}.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix) and not keep_db:
                os.remove(db + suffix)
        http_port = free_port()
        metrics_port = free_port()
        # LDIS_BENCH_WRAP="perf record -g -o perf.data --" profiles ldisd in a scenario.
        argv = os.environ.get("LDIS_BENCH_WRAP", "").split() + [os.path.join(self.build, "app", "ldisd"), "--config", os.path.join(HERE, "config", "ldisd.toml"),
                "--set", f"mqtt.uri={self.uri}", "--set", f"store.path={db}", "--set", "log.level=warn",
                "--set", f"http.listen=127.0.0.1:{http_port}", "--set", f"http.metrics_listen=127.0.0.1:{metrics_port}", "--set", f"mqtt.client_id=bench-{name}",
                "--set", f"email.smtp_url=maildir:{os.path.join(self.work, 'mail-' + name)}",
                "--set", "dispatch.channels=email"]
        if partners:
            argv += ["--set", f"paths.partners={partners}"]
        for s in sets:
            argv += ["--set", s]
        p = self.start(argv, f"ldisd-{name}.log", group=True)
        deadline = time.time() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except Exception:
                pass
            if p.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"ldisd ({name}) did not become healthy; see {self.work}/ldisd-{name}.log")
            time.sleep(0.1)
        p.db = db
        p.metrics_port = metrics_port
        p.http_port = http_port
        return p


def write_partners(path, recipients, channel="email", url=None, secret=None):
    with open(path, "w") as f:
        f.write('[coordinators]\npartner = "coord"\n[[partner]]\nid = "coord"\nname = "Coordinators"\n'
                '  [[partner.contact]]\n  name = "team"\n  channel = "email"\n  address = "coordinators@example.org"\n'
                '[[partner]]\nid = "many"\nname = "Fan-out"\n')
        for i in range(1, recipients + 1):
            if channel == "email":
                f.write(f'  [[partner.contact]]\n  name = "r{i}"\n  channel = "email"\n'
                        f'  address = "r{i}@example.org"\n')
            else:
                f.write(f'  [[partner.contact]]\n  name = "r{i}"\n  channel = "webhook"\n  format = "json"\n'
                        f'  url = "{url}/hook/{i}"\n  secret_file = "{secret}"\n  insecure = true\n')
        f.write('  [[partner.subscription]]\n  levels = ["red"]\n')


def publish_red(bench, compound):
    """Publishes one red report (a death) and returns the Unix time it was sent."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report = {"schema": "ldis.report/1", "id": str(uuid.uuid4()), "submitted_at": now,
              "source": {"type": "panel", "organisation": "Kent and Medway DRD panel", "role": "chair"},
              "area": {"authority": "Medway", "district": "Medway"}, "setting": "home",
              "substances": [{"name": compound, "form": "powder"}], "harms": {"cases": 1, "deaths": 1},
              "description": "A death linked to a powder sold locally.", "evidence": "professional"}
    sent = time.time()
    subprocess.run(["mosquitto_pub", "-p", str(bench.mqtt_port), "-V", "mqttv5", "-q", "1",
                    "-t", "ldis/v1/reports/panel", "-m", json.dumps(report)], check=True)
    return sent


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Postgres:
    """A PostgreSQL of the benchmark's own: initdb in the work folder, a Unix socket only,
    as the postgres user when run as root (PostgreSQL refuses root); stopped at close."""

    def __init__(self, bench):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise RuntimeError("PostgreSQL is not installed: scripts/setup installs postgresql-15")
        bindir = os.path.dirname(bins[-1])
        self.dir = os.path.join(bench.work, "pg")
        os.makedirs(self.dir)
        prefix = []
        if os.getuid() == 0:
            import pwd
            pw = pwd.getpwnam("postgres")
            os.chown(bench.work, pw.pw_uid, pw.pw_gid)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            prefix = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        data = os.path.join(self.dir, "data")
        subprocess.run(prefix + [os.path.join(bindir, "initdb"), "-D", data, "-U", "ldis", "-A", "trust",
                                 "-E", "UTF8", "--locale=C", "--no-instructions"],
                       check=True, capture_output=True)
        # synchronous_commit on (the default): a commit is on disk before ldisd acknowledges.
        self.proc = bench.start(prefix + [os.path.join(bindir, "postgres"), "-D", data, "-k", self.dir,
                                          "-c", "listen_addresses=", "-c", "max_connections=100"],
                                "postgres.log")
        deadline = time.time() + 30
        while subprocess.run(["pg_isready", "-q", "-h", self.dir], check=False).returncode != 0:
            if time.time() > deadline:
                raise RuntimeError("PostgreSQL did not start; see " + self.dir)
            time.sleep(0.2)

    def database(self, name):
        subprocess.run(["psql", "-q", "-h", self.dir, "-U", "ldis", "-d", "postgres", "-c",
                        f'CREATE DATABASE "{name}"'], check=True, capture_output=True)
        return f"postgresql:///{name}?host={self.dir}&user=ldis"


def stages(port):
    """ldisd's stage histograms (ldis_stage_seconds in /metrics): per stage, how many, the
    mean, and the p50 and p99 as the upper bound of the bucket they fall in (ms)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    buckets, sums, counts = {}, {}, {}
    for line in text.splitlines():
        m = re.match(r'ldis_stage_seconds_(bucket|sum|count)\{stage="(\w+)"(?:,le="([^"]+)")?\} (\S+)', line)
        if not m:
            continue
        kind, stage, le, value = m.groups()
        if kind == "bucket":
            buckets.setdefault(stage, []).append((float("inf") if le == "+Inf" else float(le), float(value)))
        elif kind == "sum":
            sums[stage] = float(value)
        else:
            counts[stage] = float(value)
    out = {}
    for stage, bs in buckets.items():
        n = counts.get(stage, 0)
        if not n:
            continue
        def q(p):
            for le, c in bs:
                if c >= p * n:
                    return le * 1000
            return None
        out[stage] = {"count": int(n), "mean_ms": sums[stage] / n * 1000, "p50_le_ms": q(.5), "p99_le_ms": q(.99)}
    return out


def fill_history(db, reports, alerts, years=10):
    """Ten years of history written straight into the database ldisd made: `reports` real
    reports in signals of 10 each, `alerts` alerts with two versions and ten deliveries each
    (20 of them live), as coordinators would have after years of use."""
    import random
    import sqlite3
    rnd = random.Random(7)
    now = int(time.time() * 1000)
    start = now - years * 365 * 86400000
    districts = ["Medway", "Ashford", "Canterbury", "Dartford", "Dover", "Folkestone & Hythe",
                 "Gravesham", "Maidstone", "Sevenoaks", "Swale", "Thanet", "Tonbridge & Malling",
                 "Tunbridge Wells"]
    families = ["opioid", "nitazene", "synthetic_cannabinoid", "benzodiazepine", "cocaine",
                "stimulant", "ketamine", "xylazine"]
    sources = ["hospital", "custody", "prison", "treatment", "outreach", "drug_checking", "ambulance"]
    settings = ["community", "street", "prison", "custody", "home", "hostel"]
    c = sqlite3.connect(db)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=OFF")
    signals = max(1, reports // 10)
    c.executemany("INSERT INTO signals (id, family, authority, district, opened_at_ms, first_seen_ms, "
                  "last_seen_ms, level, confidence) VALUES (?, ?, ?, ?, ?, ?, ?, 'amber', 'professional')",
                  [(i + 1, families[i % len(families)], "Medway" if i % 13 == 0 else "Kent",
                    districts[i % 13], start + i * (now - start) // signals,
                    start + i * (now - start) // signals, start + i * (now - start) // signals)
                   for i in range(signals)])
    rows, links = [], []
    for i in range(reports):
        at = start + i * (now - start) // reports
        sig = min(i // 10, signals - 1)
        d = districts[sig % 13]
        rows.append((i + 1, f"00000000-0000-4000-8000-{i:012d}", f"KM-R{i + 1:06d}", at, "mqtt",
                     "2026-01-01T00:00:00Z", sources[i % len(sources)], "Org", "Medway" if d == "Medway" else "Kent",
                     d, "professional" if i % 5 else "confirmed",
                     json.dumps({"setting": settings[i % len(settings)]})))
        links.append((sig + 1, i + 1))
    c.executemany("INSERT INTO reports (seq, id, reference, received_at_ms, channel, submitted_at, "
                  "source_type, organisation, authority, district, evidence, document) VALUES "
                  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    c.executemany("INSERT INTO signal_reports (signal_id, report_seq) VALUES (?, ?)", links)
    body = json.dumps({"summary": "Drug Warning", "what": "What: opioid", "advice": "Do not use alone."})
    alert_rows, versions, deliveries = [], [], []
    for a in range(alerts):
        sig = a * signals // alerts + 1
        created = start + a * (now - start) // alerts
        live = a >= alerts - 20
        status = "issued" if live else ("cancelled" if a % 3 == 0 else "expired")
        level = ["red", "amber", "green"][a % 3]
        year = time.gmtime(created / 1000).tm_year
        alert_rows.append((a + 1, f"KM-{year}-{a + 1:05d}", sig, status, level, "professional",
                           "professionals", 2, 0, created, created + 3600000, created + 60000,
                           created + 365 * 86400000))
        versions += [(a + 1, 1, "issued", level, "professional", "[]", "{}", body, created + 60000),
                     (a + 1, 2, status, level, "professional", "[]", "{}", body, created + 3600000)]
        for p in range(10):
            # alert, version, kind, partner, contact, slot, channel, address, status,
            # attempts, next attempt, created, delivered, acknowledged, updated
            deliveries.append((a + 1, 1, "alert", f"p{p}", "desk", f"p{p}/desk", "email",
                               f"p{p}@example.org", "delivered" if (a + p) % 50 else "failed", 1,
                               created, created + 60000, created + 61000 + p * 100,
                               created + 3600000 + p if p % 3 else None, created + 61000))
    c.executemany("INSERT INTO alerts (id, reference, signal_id, status, level, confidence, audience, "
                  "version, provisional, created_at_ms, updated_at_ms, issued_at_ms, valid_until_ms) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", alert_rows)
    c.executemany("INSERT INTO alert_versions (alert_id, version, status, level, confidence, rules, "
                  "facts, body, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", versions)
    c.executemany("INSERT INTO deliveries (alert_id, version, kind, partner, contact, slot, channel, "
                  "address, status, attempts, next_attempt_ms, created_at_ms, delivered_at_ms, "
                  "acknowledged_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  deliveries)
    c.commit()
    c.close()


def signed_in_opener(port, key):
    """An HTTP client signed in with `key` through the sign-in form, as a browser is."""
    import http.cookiejar
    import re
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"http://127.0.0.1:{port}/login", timeout=10).read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrf": csrf, "key": key, "next": "/"}).encode()
    opener.open(f"http://127.0.0.1:{port}/login", data=form, timeout=10).read()
    return opener
