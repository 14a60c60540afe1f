"""Questions responders ask of a capture, as SQL over query.sql's tables. The README shows
them, `scaptool sql --examples` prints them, and tests/test_sql.py runs each on the project's
own capture of the seed story."""

EXAMPLES = {
    "slowest-calls": (
        "Which system calls took longest, per process?",
        """SELECT "proc.name", "evt.type", count(*) AS calls,
       max("evt.latency") / 1e6 AS worst_ms, sum("evt.latency") / 1e6 AS total_ms
FROM events WHERE "evt.dir" = '<'
GROUP BY ALL ORDER BY worst_ms DESC LIMIT 10"""),
    "bytes-per-connection": (
        "How many bytes went each way on each connection, and which process held it?",
        """SELECT p."proc.name", c."fd.name" AS connection, c.bytes_in, c.bytes_out
FROM connections c JOIN processes p
  ON p."proc.pid" = c."proc.pid" AND c.valid_from >= p.valid_from
 AND (p.valid_to IS NULL OR c.valid_from < p.valid_to)
WHERE c."fd.name" <> ''
ORDER BY c.bytes_in + c.bytes_out DESC"""),
    "around-a-log-line": (
        "Which files and connections did the thread that logged 'Database error' use in the "
        "second around it?",
        """SELECT e."evt.type", e."fd.name", count(*) AS calls
FROM logs l JOIN events e
  ON e."thread.tid" = l."thread.tid"
 AND e."evt.time" BETWEEN l."evt.time" - INTERVAL 1 SECOND AND l."evt.time" + INTERVAL 1 SECOND
WHERE l.line LIKE '%Database error%' AND e."fd.name" IS NOT NULL
GROUP BY ALL ORDER BY calls DESC"""),
    "errors-per-call": (
        "Which system calls failed, with which error, how often?",
        """SELECT "evt.type", "evt.res" AS error, count(*) AS times
FROM events WHERE "evt.failed"
GROUP BY ALL ORDER BY times DESC, "evt.type\""""),
}

# the nearest SQL to three of sysdig's chisels (bench/analytics.py compares their times)
CHISEL_QUERIES = {
    "topprocs_file": """SELECT "proc.name", sum("evt.rawres")::BIGINT AS bytes FROM events
WHERE "fd.type" = 'file' AND "evt.is_io" AND "evt.dir" = '<' AND "evt.rawres" > 0
GROUP BY 1 ORDER BY bytes DESC LIMIT 30""",
    "topconns": """SELECT "fd.name", sum("evt.rawres")::BIGINT AS bytes FROM events
WHERE "fd.type" IN ('ipv4', 'ipv6') AND "evt.is_io" AND "evt.dir" = '<' AND "evt.rawres" > 0
GROUP BY 1 ORDER BY bytes DESC LIMIT 30""",
    "topscalls_time": """SELECT "evt.type", sum("evt.latency")::BIGINT AS ns FROM events
WHERE "evt.dir" = '<' GROUP BY 1 ORDER BY ns DESC LIMIT 30""",
}
