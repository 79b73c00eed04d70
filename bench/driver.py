"""The LDIS benchmark driver (run by bench/run under /usr/bin/python3).

Starts its own mosquitto, the C++ sinks (bench/sink.cpp) and ldisd on loopback, runs every
scenario in one invocation, stops everything it started, and writes
bench/results/bench.json and a readable table (also bench/results/bench.txt).

Scenarios (DESIGN §10):
  broker-alone  QoS 1 publish -> subscribe through the same broker, same message sizes
  intake        reports/s committed (a receipt is sent only after the commit), realistic mix,
                synchronous=full and normal, one and four MQTT connections; and the worst
                case for grading (every report in one signal)
  memory        ldisd's RSS at rest, then sampled under a sustained realistic load
  latency       reports at 50/s, one in five a red one opening a new alert to 100 email
                recipients (the rest the realistic mix): red report published -> first and
                -> last (100th) email accepted by the SMTP sink, over 200 alerts, after a
                second of the same load that is not counted (the first alert after ldisd
                started is reported apart: it pays for cold caches and Paho C's idle sleep)
  fan-out       one red alert to N email recipients, against the SMTP sink's own acceptance
                rate (ldis_sink smtp-blast, the same round trips libcurl makes, same bytes)
  webhooks      one red alert to N JSON webhooks, against the HTTP sink's own rate

For experiments: LDIS_BENCH_LATENCY_SET and LDIS_BENCH_FANOUT_SET add ldisd --set options
(space-separated, e.g. "email.connections=1") to those scenarios; LDIS_BENCH_KEEP=1 keeps
the work folder (ldisd's database and log, the sinks' journals, the loadgen's map) for
reading afterwards.
"""
import argparse
import glob
import json
import os
import re
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
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


def scenario_intake(bench, count):
    rows = []
    for name, sets in [
        ("full-1conn", ["store.synchronous=full"]),
        ("normal-1conn", ["store.synchronous=normal"]),
        ("full-4conn", ["store.synchronous=full", "mqtt.intake_connections=4"]),
        ("normal-4conn", ["store.synchronous=normal", "mqtt.intake_connections=4"]),
        ("full-16conn", ["store.synchronous=full", "mqtt.intake_connections=16"]),
    ]:
        # A group of its own: the stopped ldisd of an earlier scenario keeps its sessions
        # (and its share of the group's messages) for mqtt.session_expiry_s.
        p = bench.ldisd(name, *sets, f"mqtt.shared_group=bench-{name}")
        res = bench.loadgen("--mode", "intake", "--mix", "realistic", "--count", count)
        rows.append({"scenario": "intake-" + name, "result": res, "ldisd_peak_rss_kib": rss_kib(p.pid, "VmHWM")})
        bench.stop(p)
    p = bench.ldisd("worst", "store.synchronous=full")
    res = bench.loadgen("--mode", "intake", "--mix", "worst", "--count", max(1000, count // 4))
    rows.append({"scenario": "intake-one-signal", "result": res, "ldisd_peak_rss_kib": rss_kib(p.pid, "VmHWM")})
    bench.stop(p)
    return rows


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


def scenario_pg_intake(bench, count):
    """Durable intake with 1, 2 and 4 ldisd on one PostgreSQL, sharing one subscription."""
    pg = Postgres(bench)
    rows = []
    for n in (1, 2, 4):
        url = pg.database(f"bench{n}")
        procs = [bench.ldisd(f"pg{n}-{i}", f"store.url={url}", f"mqtt.shared_group=bench-pg{n}")
                 for i in range(n)]
        res = bench.loadgen("--mode", "intake", "--mix", "realistic", "--count", count)
        rows.append({"scenario": f"intake-postgresql-{n}", "instances": n, "result": res,
                     "ldisd_peak_rss_kib": max(rss_kib(p.pid, "VmHWM") or 0 for p in procs)})
        for p in procs:
            bench.stop(p)
    return rows


def scenario_memory(bench, rate, seconds):
    p = bench.ldisd("memory", "store.synchronous=full")
    time.sleep(2)
    at_rest = rss_kib(p.pid)
    samples = []
    load = subprocess.Popen([bench.tool("ldis_loadgen"), "--uri", bench.uri, "--mode", "intake", "--mix", "realistic",
                             "--rate", str(rate), "--count", str(int(rate * seconds))],
                            stdout=subprocess.PIPE, text=True)
    started = time.time()
    while load.poll() is None:
        samples.append((time.time() - started, rss_kib(p.pid)))
        time.sleep(0.5)
    result = json.loads(load.stdout.read())
    time.sleep(2)
    after = rss_kib(p.pid)
    peak = rss_kib(p.pid, "VmHWM")
    bench.stop(p)
    values = [s[1] for s in samples if s[1]]
    quarter = max(1, len(values) // 4)
    return {"scenario": "memory", "rate": rate, "seconds": seconds, "stored": result["received"],
            "rss_at_rest_kib": at_rest, "rss_peak_kib": peak, "rss_after_kib": after,
            "rss_steady_kib": int(statistics.median(values[len(values) // 2:])) if values else None,
            "rss_first_quarter_kib": int(statistics.mean(values[:quarter])) if values else None,
            "rss_last_quarter_kib": int(statistics.mean(values[-quarter:])) if values else None,
            "samples": samples}


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


def scenario_latency(bench, alerts, rate, red_every, recipients):
    partners = os.path.join(bench.work, "partners-latency.toml")
    write_partners(partners, recipients)
    sync = disk_sync_ms(bench.work, rate)
    sink, port, journal = bench.sink("smtp", "sink-latency")
    p = bench.ldisd("latency", "store.synchronous=full", f"email.smtp_url=smtp://127.0.0.1:{port}",
                    "email.connections=4", *os.environ.get("LDIS_BENCH_LATENCY_SET", "").split(),
                    partners=partners)
    mapping = os.path.join(bench.work, "latency-map.jsonl")
    # A second of the same load first, not measured: the measured reports then find ldisd as
    # a steady 50/s does (statements prepared, SMTP connections open, and Paho C's receive
    # thread not in the 100 ms sleep it takes after a second without traffic). The first of
    # those alerts is reported apart, as the first after a start.
    warm_alerts = max(1, int(rate) // red_every)
    res = bench.loadgen("--mode", "alerts", "--count", alerts * red_every, "--rate", rate,
                        "--red-every", red_every, "--map", mapping,
                        "--warmup", warm_alerts * red_every)
    expected = (alerts + warm_alerts) * (recipients + 1)  # and the coordinators' page for each
    deadline = time.time() + 300
    while count_lines(journal) < expected and time.time() < deadline:
        time.sleep(0.2)
    settled = -1
    while settled != count_lines(journal) and time.time() < deadline:  # approvals of the mix
        settled = count_lines(journal)
        time.sleep(0.5)
    peak = rss_kib(p.pid, "VmHWM")
    time.sleep(2.1)  # /metrics is built at most every 2 s
    stage_times = stages(p.metrics_port)
    bench.stop(p)
    bench.stop(sink)
    mapped = [m for m in read_jsonl(mapping) if m["alert"]]
    sent = {m["alert"]: m["sent_at"] for m in mapped if not m.get("warmup")}
    warm = sorted((m["sent_at"], m["alert"]) for m in mapped if m.get("warmup"))
    by_alert = {}
    for r in read_jsonl(journal):
        if r["kind"] == "alert":
            by_alert.setdefault(r["alert"], []).append(r["at"])
    first, last, complete = [], [], 0
    timeline = []  # (sent_at, first ms) in publishing order, to see where the tail comes from
    for alert, sent_at in sorted(sent.items(), key=lambda kv: kv[1]):
        times = by_alert.get(alert, [])
        if not times:
            continue
        first.append((min(times) - sent_at) * 1000)
        timeline.append(round(first[-1], 1))
        if len(times) >= recipients:
            complete += 1
            last.append((sorted(times)[recipients - 1] - sent_at) * 1000)
    cold = None
    if warm and by_alert.get(warm[0][1]):
        cold = (min(by_alert[warm[0][1]]) - warm[0][0]) * 1000
    return {"scenario": "latency", "alerts": alerts, "rate": rate, "red_every": red_every,
            "warmup_alerts": warm_alerts, "first_alert_after_start_ms": cold,
            "disk_sync_ms": sync,
            "recipients": recipients,
            "alerts_opened": len(sent), "alerts_complete": complete, "receipts": res,
            "first_email_ms": {"p50": pct(first, .5), "p95": pct(first, .95), "p99": pct(first, .99)},
            "all_emails_ms": {"p50": pct(last, .5), "p95": pct(last, .95), "p99": pct(last, .99)},
            "ldisd_peak_rss_kib": peak, "stages": stage_times, "first_email_ms_in_order": timeline}


def scenario_fanout(bench, recipients, connections):
    partners = os.path.join(bench.work, "partners-fanout.toml")
    write_partners(partners, recipients)
    sample = os.path.join(bench.work, "sample.eml")
    sink, port, journal = bench.sink("smtp", "sink-fanout", "--sample", sample)
    p = bench.ldisd("fanout", f"email.smtp_url=smtp://127.0.0.1:{port}", f"email.connections={connections}",
                    *os.environ.get("LDIS_BENCH_FANOUT_SET", "").split(), partners=partners)
    sink_cpu0, ldisd_cpu0 = cpu_seconds(sink.pid), cpu_seconds(p.pid)
    published = publish_red(bench, "benchcompound fanout")
    deadline = time.time() + 900
    while count_lines(journal) < recipients + 1 and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.3)
    sink_cpu, ldisd_cpu = cpu_seconds(sink.pid) - sink_cpu0, cpu_seconds(p.pid) - ldisd_cpu0
    peak = rss_kib(p.pid, "VmHWM")
    bench.stop(p)
    records = read_jsonl(journal)
    alerts = sorted(r["at"] for r in records if r["kind"] == "alert")
    # The sink alone, same bytes, same number of connections, same run.
    blast = subprocess.run([bench.tool("ldis_sink"), "smtp-blast", "--port", str(port), "--count", str(recipients),
                            "--connections", str(connections), "--message", sample],
                           capture_output=True, text=True, timeout=600)
    bench.stop(sink)
    alone = json.loads(blast.stdout)
    span = alerts[-1] - published
    rate = len(alerts) / span
    return {"scenario": "fanout", "recipients": recipients, "smtp_connections": connections,
            "delivered": len(alerts), "message_bytes": alone["bytes"],
            "first_email_ms": (alerts[0] - published) * 1000, "all_emails_s": span,
            "ldis_per_second": rate, "sink_alone_per_second": alone["per_second"],
            "ratio_to_sink_alone": rate / alone["per_second"],
            "connections_used": len({r["conn"] for r in records}),
            "sink_cpu_share": sink_cpu / span, "ldisd_cpu_share": ldisd_cpu / span,
            "ldisd_peak_rss_kib": peak}


def scenario_webhooks(bench, recipients):
    sink, port, journal = bench.sink("http", "sink-webhooks")
    secret = os.path.join(bench.work, "hook.secret")
    with open(secret, "w") as f:
        f.write("bench-secret\n")
    partners = os.path.join(bench.work, "partners-webhooks.toml")
    write_partners(partners, recipients, channel="webhook", url=f"http://127.0.0.1:{port}", secret=secret)
    p = bench.ldisd("webhooks", "dispatch.channels=email,webhook", partners=partners)
    published = publish_red(bench, "benchcompound webhooks")
    deadline = time.time() + 600
    while count_lines(journal) < recipients and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.3)
    bench.stop(p)
    hooks = sorted(r["at"] for r in read_jsonl(journal) if r["path"].startswith("/hook/"))
    body = os.path.join(bench.work, "hook-body.json")
    with open(body, "w") as f:
        f.write("x" * max(1, int(statistics.mean(r["bytes"] for r in read_jsonl(journal)))))
    blast = subprocess.run([bench.tool("ldis_sink"), "http-blast", "--port", str(port), "--count", str(recipients),
                            "--connections", "4", "--message", body], capture_output=True, text=True, timeout=600)
    bench.stop(sink)
    alone = json.loads(blast.stdout)
    span = hooks[-1] - published
    return {"scenario": "webhooks", "recipients": recipients, "delivered": len(hooks),
            "first_ms": (hooks[0] - published) * 1000, "all_s": span, "ldis_per_second": len(hooks) / span,
            "sink_alone_per_second": alone["per_second"],
            "ratio_to_sink_alone": len(hooks) / span / alone["per_second"]}


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


def scenario_dashboard(bench, reports, alerts, rounds=20):
    """The coordinators' dashboard (issue 17 §1: trends, map, time to alert) and the
    quarterly report over ten years of history: `reports` reports and `alerts` alerts."""
    p = bench.ldisd("dashboard")
    db = p.db
    bench.stop(p)
    t0 = time.time()
    fill_history(db, reports, alerts)
    filled_s = time.time() - t0
    key = subprocess.run([os.path.join(bench.build, "app", "ldisctl"), "tokens", "create", "--db", db,
                          "--role", "coordinator", "--name", "bench"], capture_output=True,
                         text=True, check=True).stdout.strip()
    # Without the daily retention purge, which would take the free text of the 8 years older
    # than store.retention_days (160,000 reports) at start: it is not what is measured here.
    p = bench.ldisd("dashboard", "store.retention_days=0", keep_db=True)
    opener = signed_in_opener(p.http_port, key)
    # One view to warm the caches, not counted.
    opener.open(f"http://127.0.0.1:{p.http_port}/", timeout=60).read()
    out = {"scenario": "dashboard", "reports": reports, "alerts": alerts, "filled_s": round(filled_s, 1)}
    for name, path in (("dashboard", "/"), ("quarterly", "/reports/quarterly")):
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            with opener.open(f"http://127.0.0.1:{p.http_port}{path}", timeout=30) as r:
                body = r.read()
                if r.status != 200 or (name == "dashboard" and b"district-map" not in body):
                    raise RuntimeError(f"{path} did not render: {r.status}")
            times.append((time.perf_counter() - t) * 1000)
        out[name] = {"p50_ms": round(pct(times, 0.5), 1), "p99_ms": round(pct(times, 0.99), 1),
                     "max_ms": round(max(times), 1)}
    out["ldisd_peak_rss_kib"] = rss_kib(p.pid, "VmHWM")
    out["target_met"] = out["dashboard"]["p99_ms"] < 200
    bench.stop(p)
    return out


def incomplete(s):
    """What a scenario did not finish: a figure from a partial run would be wrong."""
    out = []
    for r in s.get("intake", []):
        if r["result"]["received"] != r["result"]["count"]:
            out.append(f"{r['scenario']}: {r['result']['received']} of {r['result']['count']} receipts")
    if "latency" in s and s["latency"]["alerts_complete"] != s["latency"]["alerts"]:
        out.append(f"latency: {s['latency']['alerts_complete']} of {s['latency']['alerts']} alerts reached "
                   f"all {s['latency']['recipients']} recipients")
    for name in ("fanout", "webhooks"):
        if name in s and s[name]["delivered"] != s[name]["recipients"]:
            out.append(f"{name}: {s[name]['delivered']} of {s[name]['recipients']} delivered")
    if "memory" in s and s["memory"]["stored"] != int(s["memory"]["rate"] * s["memory"]["seconds"]):
        out.append(f"memory: {s['memory']['stored']} reports stored")
    return out


def table(doc):
    s = doc["scenarios"]
    alone = s["broker_alone"]["per_second"]
    lines = [f"LDIS benchmark, {doc['machine']}, {doc['when']}", "",
             f"{'intake (QoS 1, receipt after commit)':<40}{'reports/s':>10}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}{'RSS MiB':>9}",
             f"{'broker alone (publish -> subscribe)':<40}{alone:>10.0f}{1:>8.2f}{s['broker_alone']['p50_ms']:>9.2f}"
             f"{s['broker_alone']['p99_ms']:>9.2f}{'':>9}"]
    for r in s["intake"] + s.get("pg_intake", []):
        res = r["result"]
        lines.append(f"{r['scenario']:<40}{res['per_second']:>10.0f}{res['per_second'] / alone:>8.2f}"
                     f"{res['p50_ms']:>9.2f}{res['p99_ms']:>9.2f}{r['ldisd_peak_rss_kib'] / 1024:>9.1f}"
                     + ("" if res["received"] == res["count"] else "  INCOMPLETE"))
    lat = s["latency"]
    lines += ["", f"alert latency: reports at {lat['rate']:.0f}/s, one in {lat['red_every']} red, each red "
                  f"a new alert to {lat['recipients']} email recipients ({lat['alerts_complete']} of "
                  f"{lat['alerts']} alerts complete)",
              f"{'':<40}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"]
    for key, label in (("first_email_ms", "report published -> first email"),
                       ("all_emails_ms", f"report published -> all {lat['recipients']}")):
        v = lat[key]
        lines.append(f"{label:<40}" + "".join(f"{(v[p] if v[p] is not None else float('nan')):>9.1f}"
                                               for p in ("p50", "p95", "p99")))
    if lat.get("disk_sync_ms"):
        d = lat["disk_sync_ms"]
        lines.append(f"  (this disk at the same pace: 8 KiB write + fdatasync p50 {d['p50']:.2f} ms, "
                     f"p99 {d['p99']:.2f} ms; one in each commit)")
    if lat.get("first_alert_after_start_ms") is not None:
        lines.append(f"  (after {lat['warmup_alerts']} alerts' warm-up, not counted; the first alert after "
                     f"ldisd started: first email in {lat['first_alert_after_start_ms']:.1f} ms)")
    if lat.get("stages"):
        lines += [f"{'  where the time goes (ldisd, /metrics)':<40}{'mean ms':>9}{'p50 <=':>9}{'p99 <=':>9}{'count':>9}"]
        for stage, v in lat["stages"].items():
            lines.append(f"{'  ' + stage:<40}{v['mean_ms']:>9.3f}{v['p50_le_ms']:>9.2f}{v['p99_le_ms']:>9.2f}{v['count']:>9}")
    f = s["fanout"]
    lines += ["", f"fan-out: one red alert to {f['recipients']} email recipients over {f['smtp_connections']} "
                  f"SMTP connections ({f['message_bytes']} bytes each)",
              f"{'SMTP sink alone (same bytes, same round trips)':<48}{f['sink_alone_per_second']:>10.0f} msg/s",
              f"{'ldisd (report published -> last accepted)':<48}{f['ldis_per_second']:>10.0f} msg/s"
              f"   ratio {f['ratio_to_sink_alone']:.2f}",
              f"  first email {f['first_email_ms']:.1f} ms; all in {f['all_emails_s']:.2f} s; CPU busy: ldisd "
              f"{f['ldisd_cpu_share'] * 100:.0f}%, sink {f['sink_cpu_share'] * 100:.0f}% of one core"]
    if "webhooks" in s:
        w = s["webhooks"]
        lines += [f"webhooks: one red alert to {w['recipients']} JSON webhooks: ldisd {w['ldis_per_second']:.0f}/s, "
                  f"HTTP sink alone {w['sink_alone_per_second']:.0f}/s, ratio {w['ratio_to_sink_alone']:.2f}"]
    m = s["memory"]
    lines += ["", f"memory (ldisd RSS, MiB): at rest {m['rss_at_rest_kib'] / 1024:.1f}; under {m['rate']} reports/s "
                  f"for {m['seconds']} s: steady {m['rss_steady_kib'] / 1024:.1f}, peak {m['rss_peak_kib'] / 1024:.1f}, "
                  f"first quarter {m['rss_first_quarter_kib'] / 1024:.1f} -> last quarter "
                  f"{m['rss_last_quarter_kib'] / 1024:.1f}; after {m['rss_after_kib'] / 1024:.1f}"]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("LDIS_BUILD_DIR", os.path.join(HERE, "build")))
    ap.add_argument("--count", type=int, default=20000, help="reports per intake scenario")
    ap.add_argument("--alerts", type=int, default=200)
    ap.add_argument("--rate", type=float, default=50, help="reports/s in the latency scenario")
    ap.add_argument("--red-every", type=int, default=5,
                    help="latency: every Nth report is a red one opening a new alert; the rest "
                         "are the realistic mix without red")
    ap.add_argument("--recipients", type=int, default=10000, help="fan-out recipients")
    ap.add_argument("--memory-rate", type=int, default=1000)
    ap.add_argument("--memory-seconds", type=int, default=30)
    ap.add_argument("--history-reports", type=int, default=200000,
                    help="dashboard: reports in ten years of history")
    ap.add_argument("--history-alerts", type=int, default=5000, help="dashboard: alerts in it")
    ap.add_argument("--only", default="", help="comma-separated scenarios to run (default: all)")
    ap.add_argument("--out", default=os.path.join(HERE, "bench", "results"))
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    want = lambda name: not only or name in only  # noqa: E731

    work = tempfile.mkdtemp(prefix="ldis-bench-")
    bench = Bench(args.build, work)
    doc = {"machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.platform()}",
           "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "scenarios": {}}
    s = doc["scenarios"]
    try:
        if want("intake"):
            s["broker_alone"] = bench.loadgen("--mode", "broker-alone", "--count", args.count)
            s["intake"] = scenario_intake(bench, args.count)
        if want("pg-intake"):
            if "broker_alone" not in s:
                s["broker_alone"] = bench.loadgen("--mode", "broker-alone", "--count", args.count)
            s["pg_intake"] = scenario_pg_intake(bench, args.count)
        if want("latency"):
            s["latency"] = scenario_latency(bench, args.alerts, args.rate, args.red_every, 100)
        if want("fanout"):
            s["fanout"] = scenario_fanout(bench, args.recipients, 4)
        if want("webhooks"):
            s["webhooks"] = scenario_webhooks(bench, min(args.recipients, 2000))
        if want("memory"):
            s["memory"] = scenario_memory(bench, args.memory_rate, args.memory_seconds)
        if want("dashboard"):
            s["dashboard"] = scenario_dashboard(bench, args.history_reports, args.history_alerts)
    finally:
        bench.close()
    problems = incomplete(s)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump(doc, f, indent=2)
    if not only:
        text = table(doc)
        with open(os.path.join(args.out, "bench.txt"), "w") as f:
            f.write(text + "\n")
        print(text)
    else:
        print(json.dumps(s, indent=2)[:6000])
    if os.environ.get("LDIS_BENCH_KEEP"):
        print(f"\nwritten to {args.out}/bench.json (work files kept in {work})")
    else:
        print(f"\nwritten to {args.out}/bench.json (work files in {work} were removed)")
        shutil.rmtree(work, ignore_errors=True)
    for p in problems:
        print("INCOMPLETE: " + p, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
