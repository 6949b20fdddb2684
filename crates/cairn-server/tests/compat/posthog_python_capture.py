"""Drives the real posthog-python SDK against a Cairn server.

Usage: python posthog_python_capture.py HOST PROJECT_KEY
Prints one JSON object with what the SDK returned and reported, for the
Rust test to compare with what the server stored.
"""
import json
import sys
import uuid
from datetime import datetime, timedelta, timezone

from posthog import Posthog

host, key = sys.argv[1], sys.argv[2]
out = {"errors": []}


def on_error(error, batch):
    out["errors"].append({"status": getattr(error, "status", None), "message": str(error), "events": len(batch)})


# 1. Wire acceptance, without and with gzip.
for gzip in (False, True):
    ph = Posthog(key, host=host, gzip=gzip, on_error=on_error, max_retries=0)
    out[f"e1_gzip_{gzip}"] = ph.capture("e1", distinct_id="u1", properties={"a": 1, "gzip": gzip})
    ph.flush()
    ph.shutdown()

ph = Posthog(key, host=host, sync_mode=True, on_error=on_error)

# 3. Personless capture: no distinct id, groups ignored.
out["anon"] = ph.capture("anon_evt", groups={"company": "acme"})

# 4. set vs set_once ordering.
ph.set(distinct_id="u2", properties={"plan": "free"})
ph.set_once(distinct_id="u2", properties={"plan": "pro", "first": "x"})
ph.set(distinct_id="u2", properties={"plan": "team"})
ph.set_once(distinct_id="u2", properties={"first": "later"})

# 5. Property operations inside a normal event.
ph.capture("e", distinct_id="u3", properties={"$set": {"k": 1, "z": 2}, "$set_once": {"k": 99, "o": 1}, "$unset": ["z"]})

# 6. alias direction.
ph.set(distinct_id="A", properties={"name": "a", "only_a": 1})
ph.set(distinct_id="B", properties={"name": "b", "only_b": 1})
ph.alias(previous_id="A", distinct_id="B")

# 7. Merge refusal and illegal ids.
ph.set(distinct_id="C", properties={"c": 1})
ph.capture("$identify", distinct_id="C", properties={"$anon_distinct_id": "A"})
ph.capture("$identify", distinct_id="D", properties={"$anon_distinct_id": "A"})
ph.alias(previous_id="anonymous", distinct_id="u9")
ph.alias(previous_id="u9", distinct_id="null")

# 8. Group type creation and the cap.
for i in range(1, 7):
    ph.group_identify(f"t{i}", "k", {"n": i})
out["t6_event"] = ph.capture("grouped", distinct_id="u", groups={"t6": "k", "t2": "k"})

# 10. Timestamps and uuid dedup.
out["old"] = ph.capture("old", distinct_id="u", timestamp=datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc))
out["future"] = ph.capture("future", distinct_id="u", timestamp=datetime.now(timezone.utc) + timedelta(hours=48))
fixed = str(uuid.uuid4())
out["fixed_uuid"] = fixed
ph.capture("twice", distinct_id="u", uuid=fixed)
ph.capture("twice", distinct_id="u", uuid=fixed)
ph.shutdown()

# 2. A personal key is refused visibly, and nothing is stored.
bad = Posthog("phx_personal_key_is_not_a_project_key", host=host, on_error=on_error, max_retries=0)
bad.capture("never", distinct_id="u1")
bad.flush()
bad.shutdown()

print(json.dumps(out))
