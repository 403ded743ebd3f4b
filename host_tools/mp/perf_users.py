# Runs inside MicroPython (started by `doorlink perf door`) or CPython:
# a full sync of USERS users into a user store in FOLDER, then card ->
# decision (the store's lookup and the policy, as the access controller
# runs them) for SAMPLES cards; one JSON line of figures.
#   micropython -X heapsize=192k perf_users.py FOLDER USERS SAMPLES
import json
import sys
import time

from agent import hal
from agent.access import policy
from agent.access.users import UserStore

PAGE = 50
NOW = 1778490000   # a Monday 09:00 UTC, inside the users' schedule


def user(i):
    return {"id": "user%05d" % i, "name": "User %d" % i, "cards": [3000000 + i * 7], "pin": "%06d" % (i * 13),
            "schedule": [[0x1F, 7 * 60, 19 * 60]]}


def run(folder, users, samples):
    store = UserStore(folder, users)
    t0 = hal.ticks_ms()
    store.sync_begin()
    for p in range(0, users, PAGE):
        store.sync_add([user(i) for i in range(p, min(users, p + PAGE))])
    store.sync_commit()
    sync_ms = hal.ticks_diff(hal.ticks_ms(), t0)
    step = max(1, users // samples)
    took = []
    for i in range(0, users, step):
        t = time.ticks_us() if hal.MICROPYTHON else time.perf_counter_ns() // 1000
        found = store.by_card(3000000 + i * 7)
        reason = policy.decide(found[0], "front", NOW, 0) if len(found) == 1 else "unknown_card"
        t1 = time.ticks_us() if hal.MICROPYTHON else time.perf_counter_ns() // 1000
        took.append(t1 - t if not hal.MICROPYTHON else time.ticks_diff(t1, t))
        if reason is not None:
            raise SystemExit("user%05d was denied: %s" % (i, reason))
    took.sort()
    return {"users": users, "sync_s": sync_ms / 1000, "p50_ms": took[len(took) // 2] / 1000,
            "p99_ms": took[min(len(took) - 1, len(took) * 99 // 100)] / 1000, "samples": len(took),
            "heap_kb": (hal.heap_live() or 0) // 1024}


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
