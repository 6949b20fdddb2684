"""posthog-python's group calls, as the seed document uses them.

Usage: python posthog_python_groups.py HOST PROJECT_KEY
"""
import json
import sys

from posthog import Posthog

host, key = sys.argv[1], sys.argv[2]
out = {"errors": []}


def on_error(error, batch):
    out["errors"].append({"status": getattr(error, "status", None), "message": str(error)})


ph = Posthog(key, host=host, on_error=on_error, max_retries=0)
ph.group_identify("company", "acme", {"name": "Acme", "seats": 5})
ph.flush()
ph.group_identify("company", "acme", {"seats": 7, "tier": "gold"})
ph.group_identify("company", "k" * 401, {"name": "too long"})

user_id, company_id, team_id = "user_789", "company_xyz", "team_frontend"
ph.set(distinct_id=user_id, properties={"name": "Alice Smith", "role": "Senior Developer"})
ph.group_identify("company", company_id, {"name": "XYZ Startup", "industry": "SaaS"})
ph.group_identify("team", team_id, {"name": "Frontend Team", "tech_stack": "React"})
out["feature_used"] = ph.capture("feature_used", distinct_id=user_id, properties={"feature": "advanced_dashboard"},
                                 groups={"company": company_id, "team": team_id})
ph.flush()
ph.shutdown()
print(json.dumps(out))
