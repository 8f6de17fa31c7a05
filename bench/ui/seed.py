#!/usr/bin/env python3
"""Fills a ward-collector SQLite database with N alerts shaped like a school's: a few thousand pupils
in groups, most alerts already triaged, a realistic share of new ones, a year of history.

Usage: seed.py DB N
"""
import random
import sqlite3
import sys
import time
import uuid

CATEGORIES = [("self-harm", 4), ("suicide", 5), ("bullying", 3), ("violence", 3), ("extremism", 4),
              ("drugs", 3), ("weapons", 4), ("eating-disorder", 4), ("discrimination", 3), ("grooming", 5),
              ("gambling", 2), ("sexual", 4)]
PHRASES = ["kill myself", "nobody likes you", "buy a knife", "want to die", "skip lunch forever",
           "meet me alone", "go back to", "cut myself", "weed delivery", "join the fight"]
STATUSES = ["false-positive", "no-action", "actioned", "escalated", "referred"]


def main():
    db, n = sys.argv[1], int(sys.argv[2])
    rng = random.Random(7)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    now = int(time.time() * 1_000_000)
    year = 365 * 86_400_000_000
    pupils = [f"pupil{i:04d}" for i in range(3000)]
    groups = [f"{y}{c}" for y in range(7, 14) for c in "abcdef"]
    devices = [f"dev-{i:04d}" for i in range(600)]
    con.executemany(
        "INSERT OR IGNORE INTO devices (id, kind, cert_sha256, cert_serial, hostname, os, program_version, enrolled_us, last_heartbeat_us) "
        "VALUES (?, 'agent', ?, ?, ?, 'windows 11', '0.1.0', ?, ?)",
        [(d, uuid.uuid4().hex + uuid.uuid4().hex, uuid.uuid4().hex, f"PC-{d[4:]}", now - year, now) for d in devices])
    con.executemany(
        "INSERT OR IGNORE INTO leases (device, user_name, group_name, addresses, expires_us, updated_us) VALUES (?, ?, ?, ?, ?, ?)",
        [(rng.choice(devices), p, "staff" if i % 50 == 0 else rng.choice(groups), f"10.20.{i // 250}.{i % 250}", now + 3_600_000_000, now)
         for i, p in enumerate(pupils)])
    batch = []
    for i in range(n):
        category, severity = rng.choice(CATEGORIES)
        severity = max(1, min(5, severity + rng.choice([-1, 0, 0, 1])))
        t = now - int(rng.random() ** 0.7 * year)
        # About 5,000 alerts are new (the last days' unworked queue); the rest were triaged.
        status = "new" if t > now - 3 * 86_400_000_000 and rng.random() < 0.6 else rng.choice(STATUSES)
        phrase = rng.choice(PHRASES)
        batch.append((str(uuid.UUID(int=rng.getrandbits(128))), rng.choice(devices), rng.choice(pupils), t, t,
                      "keyboard" if rng.random() < 0.8 else "window-title", category, severity, phrase,
                      f"some text before {phrase} and some after", "chrome", f"Search - {phrase}", status))
        if len(batch) == 50_000:
            insert(con, batch)
            batch.clear()
    insert(con, batch)
    con.commit()
    print(f"seeded {n} alerts", file=sys.stderr)


def insert(con, batch):
    con.executemany(
        "INSERT INTO alerts (id, device, user_name, time_us, received_us, source, category, severity, phrase, context, "
        "application, window_title, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)


if __name__ == "__main__":
    main()
