"""A simulator of the provincial 智慧政协 platform: the documented protocol
(docs/provincial.md), strictly, with its state in SQLite.

    python -m deploy.province_sim --port 8900 --data DIR --app 140400=<secret>[:hmac-sm3]

It is a program of its own: it shares no code with the adapter (its HMAC is
the standard library's over OpenSSL's SM3, the adapter's is pyca
``cryptography``'s), so a signing bug on either side cannot pass unnoticed.

Besides the protocol it plays the provincial office through a small admin
API (loopback, no signature): adopt, instruct, report on to the national
committee, record progress on a proposal, publish a task (``POST
/admin/tasks``), and read what arrived (records, figures, tasks and their
reports); and it has fault knobs: latency, an error rate,
429 storms, an outage window, duplicate and out-of-order feedback, clock skew.
"""
import argparse
import hashlib
import hmac
import json
import random
import sqlite3
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

SKEW_MS = 300_000
HASHES = {"hmac-sm3": lambda: hashlib.new("sm3"), "hmac-sha256": hashlib.sha256}
# the province's own code tables: what it accepts
CATEGORIES = {"01", "02", "03", "04", "05", "06", "07", "08", "09", "99"}
SECTORS = {f"S{n:02d}" for n in range(1, 40)}
PARTIES = {"01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "12"}
REQUIRED = {
    "opinions": ("local_id", "org", "path", "title", "content", "category", "author",
                 "reported_on"),
    "proposals": ("local_id", "org", "path", "title", "content", "category", "proposer"),
}
# the office's actions → the feedback kind (after the record's kind: opinion_adopted …)
FEEDBACK_KINDS = {"adopt": "adopted", "instruct": "instructed", "national": "reported_national",
                  "national_adopt": "national_adopted", "national_instruct": "national_instructed",
                  "progress": "progressed"}
SCHEMA = """
create table if not exists nonces (nonce text primary key, seen_ms integer);
create table if not exists answers (app text, key text, status integer, body text,
                                    primary key (app, key));
create table if not exists records (id text primary key, kind text, app text, org text,
                                    local_id text, body text, received_ms integer,
                                    unique (kind, org, local_id));
create table if not exists feedback (seq integer primary key autoincrement, app text,
                                     kind text, record_id text, body text, created_ms integer);
create table if not exists tasks (id text primary key, body text, created_ms integer);
create table if not exists task_reports (task_id text, org text, state text, app text,
                                         body text, received_ms integer,
                                         primary key (task_id, org, state));
create table if not exists figures (org text, year integer, app text, body text,
                                    revision integer, received_ms integer,
                                    primary key (org, year));
create table if not exists counters (name text primary key, n integer);
"""


class Province:
    def __init__(self, data_dir, apps, callbacks=None, org="140000"):
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(Path(data_dir) / "province.sqlite3"),
                                  check_same_thread=False, isolation_level=None)
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()
        self.apps = apps   # app id -> (secret, algorithm)
        self.callbacks = callbacks or {}   # app id -> URL its feedback is pushed to
        self.org = org
        self.faults = {"latency_ms": 0, "error_rate": 0.0, "storm_until": 0.0,
                       "storm_retry_after": 2, "outage_until": 0.0, "skew_ms": 0,
                       "duplicate_feedback": False, "shuffle_feedback": False}
        self.random = random.Random(7)

    # --- state --------------------------------------------------------------
    def q(self, sql, *args):
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def count(self, name):
        with self.lock:
            self.db.execute("insert into counters values (?, 1) on conflict(name) do update "
                            "set n = n + 1", (name,))

    def add_feedback(self, app, kind, record_id, body):
        with self.lock:
            seq = self.db.execute(
                "insert into feedback (app, kind, record_id, body, created_ms) values "
                "(?, ?, ?, ?, ?)", (app, kind, record_id, json.dumps(body, ensure_ascii=False),
                                    int(time.time() * 1000))).lastrowid
        if app in self.callbacks:
            item = {"cursor": str(seq), "kind": kind, "record_id": record_id, **body}
            copies = 2 if self.faults["duplicate_feedback"] else 1
            threading.Thread(target=self.push, args=(app, [item] * copies),
                             daemon=True).start()

    def push(self, app, items):
        """A signed callback with ``items`` to the app's callback URL (its
        answer is counted, never retried: the app's pull catches up)."""
        import urllib.error
        import urllib.request
        secret, algorithm = self.apps[app]
        url = urlsplit(self.callbacks[app])
        body = json.dumps({"items": items}, ensure_ascii=False).encode()
        stamp = int(time.time() * 1000) + self.faults["skew_ms"]
        nonce = uuid.uuid4().hex
        digest = HASHES[algorithm]()
        digest.update(body)
        text = "\n".join(["POST", url.path, "", str(stamp), nonce, digest.hexdigest()])
        signature = hmac.new(secret.encode(), text.encode(), HASHES[algorithm]).hexdigest()
        request = urllib.request.Request(self.callbacks[app], data=body, method="POST", headers={
            "Content-Type": "application/json", "X-App-Id": self.org, "X-Timestamp": str(stamp),
            "X-Nonce": nonce, "X-Signature": signature})
        try:
            with urllib.request.urlopen(request, timeout=10):
                self.count("callbacks_accepted")
        except (urllib.error.URLError, OSError):
            self.count("callbacks_failed")

    # --- authentication -----------------------------------------------------
    def check(self, method, path, query, headers, body):
        app = headers.get("X-App-Id") or ""
        if app not in self.apps:
            return "AUTH_APP", "未登记的应用"
        secret, algorithm = self.apps[app]
        try:
            stamp = int(headers.get("X-Timestamp") or "")
        except ValueError:
            return "AUTH_TIMESTAMP", "时间戳无效"
        now = int(time.time() * 1000) + self.faults["skew_ms"]
        if abs(now - stamp) > SKEW_MS:
            return "AUTH_TIMESTAMP", "时间戳超出允许范围（±300 秒）"
        nonce = headers.get("X-Nonce") or ""
        pairs = sorted(parse_qsl(query, keep_blank_values=True))
        encoded = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
        body_digest = HASHES[algorithm]()
        body_digest.update(body)
        text = "\n".join([method, path, encoded, str(stamp), nonce, body_digest.hexdigest()])
        wanted = hmac.new(secret.encode(), text.encode(), HASHES[algorithm]).hexdigest()
        if not hmac.compare_digest(wanted, headers.get("X-Signature") or ""):
            return "AUTH_SIGNATURE", "签名错误"
        with self.lock:
            self.db.execute("delete from nonces where seen_ms < ?", (now - 2 * SKEW_MS,))
            try:
                self.db.execute("insert into nonces values (?, ?)", (nonce, now))
            except sqlite3.IntegrityError:
                return "AUTH_NONCE_REUSED", "随机数已使用"
        return None, app

    # --- resources ----------------------------------------------------------
    def receive(self, app, kind, body):
        missing = [f for f in REQUIRED[kind] if body.get(f) in (None, "", [])]
        if missing:
            return 422, {"code": "VALIDATION", "message": "缺少字段：" + "、".join(missing)}
        if body["category"] not in CATEGORIES:
            return 422, {"code": "UNKNOWN_CODE", "message": f"类别编码 {body['category']} 不存在"}
        author = body.get("author") or body.get("proposer") or {}
        if author.get("sector") and author["sector"] not in SECTORS:
            return 422, {"code": "UNKNOWN_CODE", "message": f"界别编码 {author['sector']} 不存在"}
        if author.get("party") and author["party"] not in PARTIES:
            return 422, {"code": "UNKNOWN_CODE", "message": f"党派编码 {author['party']} 不存在"}
        record_id = f"{kind[:2].upper()}-{uuid.uuid4().hex[:10]}"
        try:
            self.q("insert into records values (?, ?, ?, ?, ?, ?, ?)", record_id, kind, app,
                   body["org"], body["local_id"], json.dumps(body, ensure_ascii=False),
                   int(time.time() * 1000))
        except sqlite3.IntegrityError:   # the same item under another key: one record
            self.count("same_item_twice")
            record_id = self.q("select id from records where kind = ? and org = ? and "
                               "local_id = ?", kind, body["org"], body["local_id"])[0][0]
            return 200, {"id": record_id, "duplicate": True}
        return 201, {"id": record_id, "received_at": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def put_figures(self, app, org, year, body):
        """A platform's yearly figures (the app's own, or of a platform under
        it: its GB/T 2260 prefix), the newest replacing the last."""
        if not (org == app or (app.endswith("00") and org[:4] == app[:4])):
            return 403, {"code": "FORBIDDEN_ORG", "message": f"{app} 不能报送 {org} 的数据"}
        missing = [f for f in ("org", "org_name", "year", "roster", "proposals", "opinions")
                   if body.get(f) in (None, "")]
        if missing:
            return 422, {"code": "VALIDATION", "message": "缺少字段：" + "、".join(missing)}
        if str(body["org"]) != org or str(body["year"]) != str(year):
            return 422, {"code": "VALIDATION", "message": "路径与请求体的地区或年度不一致"}
        roster = body["roster"] if isinstance(body["roster"], dict) else {}
        for name, table, what in (("by_sector", SECTORS, "界别"), ("by_party", PARTIES, "党派")):
            bad = sorted(set(roster.get(name) or {}) - table)
            if bad:
                return 422, {"code": "UNKNOWN_CODE", "message": f"{what}编码 {bad[0]} 不存在"}
        with self.lock:
            row = self.db.execute("select revision from figures where org = ? and year = ?",
                                  (org, year)).fetchone()
            revision = (row[0] if row else 0) + 1
            self.db.execute("insert into figures values (?, ?, ?, ?, ?, ?) on conflict(org, year) "
                            "do update set app = excluded.app, body = excluded.body, revision = "
                            "excluded.revision, received_ms = excluded.received_ms",
                            (org, int(year), app, json.dumps(body, ensure_ascii=False), revision,
                             int(time.time() * 1000)))
        return 200, {"org": org, "year": int(year), "revision": revision}

    def publish_task(self, body):
        """The provincial office publishes a task to platforms (all apps unless
        ``targets``): a ``task_published`` feedback item for each."""
        kind = body.get("kind") or "notice"
        if not body.get("title") or not body.get("due_on") or \
                kind not in ("research", "consultation", "notice"):
            return 422, {"code": "VALIDATION", "message": "需要 title、due_on，kind 为 research、"
                                                          "consultation 或 notice"}
        targets = [t for t in (body.get("targets") or sorted(self.apps)) if t in self.apps]
        with self.lock:
            n = self.db.execute("select count(*) from tasks").fetchone()[0] + 1
        task = {"id": f"{self.org}-PT{n:04d}", "kind": kind, "title": body["title"],
                "content": body.get("content") or body["title"], "due_on": body["due_on"],
                "issued_on": time.strftime("%Y-%m-%d"), "issuer": body.get("issuer") or "省政协办公厅",
                "targets": targets}
        self.q("insert into tasks values (?, ?, ?)", task["id"],
               json.dumps(task, ensure_ascii=False), int(time.time() * 1000))
        for app in targets:
            self.add_feedback(app, "task_published", task["id"], dict(
                {k: v for k, v in task.items() if k not in ("id", "targets", "kind")},
                task_kind=kind))
        return 201, task

    def task_report(self, app, task_id, body):
        """A platform's acceptance of, or completion report on, a task sent to it."""
        rows = self.q("select body from tasks where id = ?", task_id)
        if not rows or app not in json.loads(rows[0][0])["targets"]:
            return 404, {"code": "TASK_NOT_FOUND", "message": f"任务 {task_id} 未下发给 {app}"}
        state = body.get("state")
        needed = ("org", "state") + (("summary", "completed_on") if state == "reported" else ())
        missing = [f for f in needed if not body.get(f)]
        if missing or state not in ("accepted", "reported"):
            return 422, {"code": "VALIDATION", "message": "缺少字段或状态无效：" + "、".join(
                missing or ["state"])}
        self.q("insert into task_reports values (?, ?, ?, ?, ?, ?) on conflict(task_id, org, "
               "state) do update set body = excluded.body, received_ms = excluded.received_ms",
               task_id, body["org"], state, app, json.dumps(body, ensure_ascii=False),
               int(time.time() * 1000))
        return 201, {"task_id": task_id, "org": body["org"], "state": state,
                     "received_at": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def feedback(self, app, since, limit):
        rows = self.q("select seq, kind, record_id, body, created_ms from feedback where "
                      "app = ? and seq > ? order by seq limit ?", app, since, limit)
        items = [{"cursor": str(seq), "kind": kind, "record_id": rid, **json.loads(body)}
                 for seq, kind, rid, body, _ in rows]
        nxt = str(rows[-1][0]) if rows else str(since)
        if self.faults["duplicate_feedback"] and items:
            items = items + items[:1]
        if self.faults["shuffle_feedback"]:
            self.random.shuffle(items)
        return {"items": items, "next": nxt}

    def office(self, action, record_id, body):
        """The provincial office acts on a record: the feedback it produces."""
        rows = self.q("select app, kind, body from records where id = ?", record_id)
        if not rows:
            return 404, {"code": "NOT_FOUND", "message": "记录不存在"}
        app, kind, _ = rows[0]
        today = time.strftime("%Y-%m-%d")
        if action == "adopt":
            item = {"issue": body.get("issue") or "《社情民意》", "number": body.get("number"),
                    "on": body.get("on") or today, "level": "province"}
        elif action == "instruct":
            item = {"leader": body.get("leader") or "省领导", "text": body.get("text"),
                    "on": body.get("on") or today, "level": body.get("level") or "province"}
        elif action == "national":   # reported on to the national committee
            item = {"on": body.get("on") or today, "level": "national"}
        elif action in ("national_adopt", "national_instruct"):
            item = {"on": body.get("on") or today, "level": "national",
                    "leader": body.get("leader"), "text": body.get("text")}
        elif action == "progress":
            item = {"state": body.get("state"), "text": body.get("text"), "on": today}
        else:
            return 404, {"code": "NOT_FOUND", "message": f"没有操作 {action}"}
        name = f"{kind[:-1]}_{FEEDBACK_KINDS[action]}"
        self.add_feedback(app, name, record_id, item)
        return 201, {"record_id": record_id, "kind": name, **item}


class Handler(BaseHTTPRequestHandler):
    server_version = "province-sim/1"
    province = None

    def log_message(self, fmt, *args):   # quiet: the tests read the state, not the log
        pass

    def answer(self, status, body, headers=()):
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def route(self, method):
        parts = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        p = self.province
        if parts.path.startswith("/admin/"):
            return self.admin(method, parts.path, parts.query, body)
        f = p.faults
        if time.time() < f["outage_until"]:
            p.count("refused_outage")
            return self.answer(503, {"code": "UNAVAILABLE", "message": "省级平台维护中"})
        if f["latency_ms"]:
            time.sleep(f["latency_ms"] / 1000)
        if time.time() < f["storm_until"]:
            p.count("refused_429")
            return self.answer(429, {"code": "RATE_LIMITED", "message": "请求过于频繁"},
                               [("Retry-After", str(f["storm_retry_after"]))])
        if f["error_rate"] and p.random.random() < f["error_rate"]:
            p.count("refused_error")
            return self.answer(500, {"code": "INTERNAL", "message": "内部错误"})
        code, app = p.check(method, parts.path, parts.query, self.headers, body)
        if code:
            p.count(f"refused_{code}")
            return self.answer(401, {"code": code, "message": app})
        segments = parts.path.strip("/").split("/")
        if method == "GET" and parts.path == "/api/v1/feedback":
            query = dict(parse_qsl(parts.query))
            return self.answer(200, p.feedback(app, int(query.get("since") or 0),
                                               min(int(query.get("limit") or 100), 500)))
        if method == "GET" and segments[:3] == ["api", "v1", "records"] and len(segments) == 4:
            rows = p.q("select kind, org, local_id from records where id = ? and app = ?",
                       segments[3], app)
            if not rows:
                return self.answer(404, {"code": "NOT_FOUND", "message": "记录不存在"})
            fb = p.q("select seq, kind, body from feedback where record_id = ? order by seq",
                     segments[3])
            return self.answer(200, {"id": segments[3], "kind": rows[0][0],
                                     "feedback": [{"cursor": str(s), "kind": k, **json.loads(b)}
                                                  for s, k, b in fb]})
        kind = {"/api/v1/opinions": "opinions", "/api/v1/proposals": "proposals"}.get(parts.path)
        if method == "POST" and kind:
            return self.once(app, body, lambda data: p.receive(app, kind, data))
        if method == "PUT" and segments[:3] == ["api", "v1", "figures"] and len(segments) == 5 \
                and segments[4].isdigit():
            return self.once(app, body, lambda data: p.put_figures(app, segments[3],
                                                                   int(segments[4]), data))
        if method == "POST" and segments[:3] == ["api", "v1", "tasks"] and len(segments) == 5 \
                and segments[4] == "reports":
            return self.once(app, body, lambda data: p.task_report(app, segments[3], data))
        return self.answer(404, {"code": "NOT_FOUND", "message": "没有这个资源"})

    def once(self, app, body, handle):
        """An upward call under its Idempotency-Key: a repeated key gets the
        first answer, and nothing is done twice."""
        p = self.province
        key = self.headers.get("Idempotency-Key")
        if not key:
            return self.answer(400, {"code": "VALIDATION", "message": "缺少 Idempotency-Key"})
        first = p.q("select status, body from answers where app = ? and key = ?", app, key)
        if first:
            p.count("repeated_key")
            return self.answer(first[0][0], json.loads(first[0][1]))
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return self.answer(400, {"code": "VALIDATION", "message": "请求体不是 JSON"})
        status, answer = handle(data if isinstance(data, dict) else {})
        p.q("insert or ignore into answers values (?, ?, ?, ?)", app, key, status,
            json.dumps(answer, ensure_ascii=False))
        return self.answer(status, answer)

    def admin(self, method, path, query, body):
        p = self.province
        data = json.loads(body or b"{}") if body else {}
        segments = path.strip("/").split("/")
        if method == "GET" and path == "/admin/records":
            kind = dict(parse_qsl(query)).get("kind")
            rows = p.q("select id, kind, app, org, local_id, body, received_ms from records "
                       + ("where kind = ? " if kind else "") + "order by received_ms",
                       *([kind] if kind else []))
            return self.answer(200, {"items": [
                {"id": r[0], "kind": r[1], "app": r[2], "org": r[3], "local_id": r[4],
                 "body": json.loads(r[5]), "received_ms": r[6]} for r in rows]})
        if method == "POST" and path == "/admin/tasks":
            status, answer = p.publish_task(data)
            return self.answer(status, answer)
        if method == "GET" and path == "/admin/tasks":
            tasks = [json.loads(b) for (b,) in p.q("select body from tasks order by created_ms")]
            for task in tasks:
                task["reports"] = [dict(json.loads(b), app=a) for a, b in p.q(
                    "select app, body from task_reports where task_id = ? order by received_ms",
                    task["id"])]
            return self.answer(200, {"items": tasks})
        if method == "GET" and path == "/admin/figures":
            rows = p.q("select org, year, app, body, revision from figures order by org, year")
            return self.answer(200, {"items": [
                {"org": r[0], "year": r[1], "app": r[2], "body": json.loads(r[3]),
                 "revision": r[4]} for r in rows]})
        if method == "GET" and path == "/admin/stats":
            return self.answer(200, dict(p.q("select name, n from counters")))
        if method == "POST" and path == "/admin/faults":
            now = time.time()
            f = p.faults
            for key in ("latency_ms", "error_rate", "skew_ms", "duplicate_feedback",
                        "shuffle_feedback", "storm_retry_after"):
                if key in data:
                    f[key] = data[key]
            if "storm_seconds" in data:
                f["storm_until"] = now + float(data["storm_seconds"])
            if "outage_seconds" in data:
                f["outage_until"] = now + float(data["outage_seconds"])
            return self.answer(200, {k: v for k, v in f.items()})
        if method == "POST" and segments[:2] == ["admin", "records"] and len(segments) == 4:
            status, answer = p.office(segments[3], segments[2], data)
            return self.answer(status, answer)
        return self.answer(404, {"code": "NOT_FOUND", "message": "没有这个资源"})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--data", required=True, help="directory of its SQLite state")
    parser.add_argument("--org", default="140000", help="the province's own app id in callbacks")
    parser.add_argument("--app", action="append", default=[],
                        help="APP_ID=SECRET[:hmac-sm3|hmac-sha256], one per platform")
    parser.add_argument("--apps-file", help="JSON {app id: {secret, algorithm, callback}} "
                        "(keeps secrets off the command line; callback: the URL feedback is "
                        "pushed to, signed)")
    args = parser.parse_args(argv)
    apps, callbacks = {}, {}
    if args.apps_file:
        for app, spec in json.loads(Path(args.apps_file).read_text()).items():
            apps[app] = (spec["secret"], spec.get("algorithm", "hmac-sm3"))
            if spec.get("callback"):
                callbacks[app] = spec["callback"]
    for spec in args.app:
        app, rest = spec.split("=", 1)
        secret, _, algorithm = rest.partition(":")
        apps[app] = (secret, algorithm or "hmac-sm3")
    Handler.province = Province(args.data, apps, callbacks, args.org)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
