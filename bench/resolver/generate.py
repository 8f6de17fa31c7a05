"""Writes the benchmark's blocklist and query files, deterministically.

blocklist.txt  LIST_SIZE domains: every UT1 list found (if any), then generated names to make up
               the count. Every server under test loads this same file.
queries.txt    dnsperf input: 30% blocked names, 20% subdomains of blocked names, 50% names under
               allowed.test (5,000 distinct, so they repeat and are answered from cache).
warm.txt       every allowed name once, to fill caches before measuring.
probe          the last domain of the list: a server answers it NXDOMAIN once fully loaded.
"""
import os
import random
import sys

ut1, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(20261124)
seen = set()
domains = []
if os.path.isdir(ut1):
    for name in sorted(os.listdir(ut1)):
        if not name.endswith(".txt"):
            continue
        with open(os.path.join(ut1, name), encoding="utf-8", errors="replace") as f:
            for line in f:
                d = line.strip().lower().strip(".")
                if not d or d.startswith("#") or ".." in d or d in seen or not all(c.isalnum() or c in "-._" for c in d):
                    continue
                if d.replace(".", "").isdigit():
                    continue
                seen.add(d)
                domains.append(d)
                if len(domains) >= size:
                    break
letters = "abcdefghijklmnopqrstuvwxyz0123456789"
tlds = ["com", "net", "org", "co.uk", "io", "xyz", "info", "top", "online", "site"]
while len(domains) < size:
    label = "".join(rng.choice(letters) for _ in range(rng.randint(6, 14)))
    d = f"{label}.{rng.choice(tlds)}"
    if rng.random() < 0.2:
        d = f"{''.join(rng.choice(letters) for _ in range(rng.randint(3, 8)))}.{d}"
    if d not in seen:
        seen.add(d)
        domains.append(d)
with open(os.path.join(out, "blocklist.txt"), "w") as f:
    f.write("\n".join(domains) + "\n")
with open(os.path.join(out, "probe"), "w") as f:
    f.write(domains[-1])
allowed = [f"h{i}.allowed.test" for i in range(5000)]
with open(os.path.join(out, "warm.txt"), "w") as f:
    for a in allowed:
        f.write(f"{a} A\n{a} AAAA\n")
with open(os.path.join(out, "queries.txt"), "w") as f:
    for _ in range(200_000):
        r = rng.random()
        qtype = "AAAA" if rng.random() < 0.25 else "A"
        if r < 0.3:
            f.write(f"{rng.choice(domains)} {qtype}\n")
        elif r < 0.5:
            f.write(f"www.{rng.choice(domains)} {qtype}\n")
        else:
            f.write(f"{rng.choice(allowed)} {qtype}\n")
