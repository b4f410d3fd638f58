#!/usr/bin/env python3
# Runs the ClickHouse migrations, a small seed, the daily holdings build, every report, the query
# service's SQL and
# every dashboard panel's SQL on current ClickHouse, embedded through chDB (PyPI `chdb`), to
# check that what CI runs on 18.16 is also accepted by current releases. Prints each result.
#   python3 -m venv /tmp/chdb && /tmp/chdb/bin/pip install chdb
#   /tmp/chdb/bin/python scripts/check-current-clickhouse.py
import glob, json, os, re, sys, tempfile
from chdb import session
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
s = session.Session(tempfile.mkdtemp(prefix="mmf-chdb-"))
s.query("DROP DATABASE IF EXISTS mmf")
s.query("CREATE DATABASE mmf")
def run(sql, fmt="TSVWithNames"):
    return s.query(sql, fmt).bytes().decode()
s.query("USE mmf")
files = sorted(glob.glob(root + "/migrations/clickhouse/V*.sql"), key=lambda f: int(re.search(r"V(\d+)__", f).group(1)))
for f in files:
    text = "\n".join(l for l in open(f).read().splitlines() if not l.strip().startswith("--"))
    for st in [x.strip() for x in text.split(";") if x.strip()]:
        try:
            run(st)
        except Exception as e:
            print("FAIL", f, st[:100], str(e)[:800]); sys.exit(1)
    print("ok", f.split("/")[-1])
seed = [
 "INSERT INTO accounts (account_id, partner_id, customer_id, name, id_type, id_masked, opened_at, txid, version) VALUES ('000000000001','p1','c1','n','resident_id','110105********0011','2026-11-20 10:00:00',1,1)",
 "INSERT INTO funds (fund_code, name, min_subscription, max_subscription_per_order, max_subscription_per_day, fast_withdrawal_daily_cap, income_policy, updated_at, txid, version) VALUES ('000001','f',0.01,1000000,5000000,100000,'carry_forward','2026-11-20 10:00:00',1,1)",
 "INSERT INTO orders (order_id, partner_id, request_id, account_id, fund_code, kind, purpose, amount, status, trade_date, effective_date, accepted_at, confirmed_at, cancelled_at, txid, version) VALUES (1,'p1','r1','000000000001','000001','subscription','',600000,'confirmed','2026-11-26','2026-11-27','2026-11-26 10:00:00',NULL,NULL,1,2),(2,'p1','r2','000000000001','000001','redemption','',100000,'accepted','2026-11-27','2026-11-28','2026-11-27 10:00:00',NULL,NULL,1,1),(3,'p1','r3','000000000001','000001','fast_redemption','withdrawal',55000,'confirmed','2026-11-27',NULL,'2026-11-27 11:00:00',NULL,NULL,1,1),(4,'p1','r4','000000000001','000001','subscription','',460000,'confirmed','2026-11-25','2026-11-26','2026-11-25 10:00:00',NULL,NULL,1,1),(5,'p1','r5','000000000001','000001','subscription','',470000,'confirmed','2026-11-27','2026-11-30','2026-11-27 09:00:00',NULL,NULL,1,1)",
 "INSERT INTO unit_journal (entry_id, account_id, fund_code, order_id, kind, units, effective_date, booked_at, txid) VALUES (1,'000000000001','000001',1,'subscription',600000,'2026-11-27','2026-11-26 16:00:00',1),(2,'000000000001','000001',2,'redemption',-100000,'2026-11-28','2026-11-27 10:00:00',1),(3,'000000000001','000001',3,'fast_redemption',-55000,'2026-11-27','2026-11-27 11:00:00',1),(4,'000000000001','000001',0,'income',12.34,'2026-11-28','2026-11-28 01:00:00',1),(4,'000000000001','000001',0,'income',12.34,'2026-11-28','2026-11-28 01:00:00',1)",
 "INSERT INTO fund_income (fund_code, day, per10k, yield_7d, txid, version) VALUES ('000001','2026-11-27',0.6543,3.652,1,1)",
]
for st in seed:
    run(st)
def days(sql, **d):
    for k, v in d.items():
        sql = sql.replace("{%s:Date}" % k, "toDate('%s')" % v)
    return sql
build = open(root + "/sync/src/holdings/build.sql").read()
for day, prev, nxt in [("2026-11-26", "2026-11-25", "2026-11-27"), ("2026-11-27", "2026-11-26", "2026-11-28")]:
    try:
        run(days(build, day=day, prev=prev, next=nxt))
    except Exception as e:
        print("FAIL holdings build", str(e)[:1500]); sys.exit(1)
print("== daily_holdings"); print(run("SELECT * FROM daily_holdings ORDER BY day").strip())
print("== report_settings"); print(run("SELECT * FROM report_settings").strip())
for f in sorted(glob.glob(root + "/query/src/reports/*.sql")):
    try:
        out = run(days(open(f).read(), day="2026-11-27"))
    except Exception as e:
        print("FAIL report", f, str(e)[:1500]); sys.exit(1)
    print("==", f.split("/")[-1]); print(out.strip())
service = [
 "SELECT entry_id, toString(effective_date) AS d, fund_code, kind, order_id, toString(units) AS u, toString(booked_at) AS b FROM unit_journal WHERE account_id = '000000000001' AND effective_date >= toDate('2026-11-01') AND effective_date <= toDate('2026-11-30') AND fund_code = '000001' AND (effective_date > toDate('2026-11-01') OR (effective_date = toDate('2026-11-01') AND entry_id > 0)) ORDER BY effective_date, entry_id LIMIT 1 BY entry_id LIMIT 101",
 "SELECT toString(sumIf(u, d < toDate('2026-11-28'))), toString(sum(u)) FROM (SELECT entry_id, any(units) AS u, any(effective_date) AS d FROM unit_journal WHERE account_id = '000000000001' AND effective_date <= toDate('2026-11-30') AND fund_code = '000001' GROUP BY entry_id)",
 "SELECT toString(day) AS d, toString(per10k) AS p, ifNull(toString(yield_7d), '') AS y FROM fund_income FINAL WHERE fund_code = '000001' AND day >= toDate('2026-11-01') AND day <= toDate('2026-11-30') ORDER BY day",
]
for q in service:
    try:
        print("== service"); print(run(q).strip())
    except Exception as e:
        print("FAIL service", q[:100], str(e)[:800]); sys.exit(1)
def expand(sql):
    sql = sql.replace("${fund}", "000001")
    sql = re.sub(r"\$__dateFilter\(([^)]*)\)", r"\1 >= toDate('2026-11-20') AND \1 <= toDate('2026-12-05')", sql)
    sql = re.sub(r"\$__timeFilter\(([^)]*)\)", r"\1 >= toDateTime('2026-11-20 00:00:00') AND \1 <= toDateTime('2026-12-05 23:59:59')", sql)
    return sql
for f in sorted(glob.glob(root + "/dashboards/*.json")):
    d = json.load(open(f))
    for var in d["templating"]["list"]:
        run(expand(var["query"]))
    for p in d["panels"]:
        for t in p.get("targets", []):
            if "rawSql" in t:
                try:
                    out = run(expand(t["rawSql"]))
                except Exception as e:
                    print("FAIL panel", p["title"], str(e)[:800]); sys.exit(1)
                print("== panel", p["title"], "->", out.strip().replace("\n", " | ")[:200])
print("ALL OK on", run("SELECT version()", "TSV").strip())
