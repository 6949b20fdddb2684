"""posthog-python's feature-flag calls against Cairn, remote and local.

Usage: python posthog_python_flags.py HOST PROJECT_KEY PERSONAL_KEY
Prints what each call returned, as JSON.
"""
import json
import sys

from posthog import Posthog

host, key, personal_key = sys.argv[1], sys.argv[2], sys.argv[3]
out = {"errors": []}


def on_error(error, batch):
    out["errors"].append(str(error))


remote = Posthog(key, host=host, on_error=on_error, max_retries=0)
out["remote"] = {
    # Stored properties decide: the server knows ana's email.
    "staff": remote.feature_enabled("acme-staff", "ana"),
    "staff_payload": remote.get_feature_flag_payload("acme-staff", "ana"),
    "staff_overridden": remote.feature_enabled(
        "acme-staff", "ana", person_properties={"email": "ana@globex.com"}
    ),
    "company_acme": remote.feature_enabled("enterprise-companies", "ana", groups={"company": "acme"}),
    "company_initech": remote.feature_enabled("enterprise-companies", "ana", groups={"company": "initech"}),
    "company_initech_overridden": remote.feature_enabled(
        "enterprise-companies",
        "ana",
        groups={"company": "initech"},
        group_properties={"company": {"plan": "enterprise"}},
    ),
    "company_none": remote.feature_enabled("enterprise-companies", "ana"),
    "variant": remote.get_feature_flag("experiment", "ana"),
    "all": remote.get_all_flags("ana", groups={"company": "acme"}),
    "missing": remote.get_feature_flag("no-such-flag", "ana"),
}
remote.flush()

local = Posthog(key, host=host, personal_api_key=personal_key, on_error=on_error, max_retries=0)
local.load_feature_flags()
out["local_loaded"] = sorted(f["key"] for f in (local.feature_flags or []))
ids = [f"user-{i}" for i in range(60)]
out["local_vs_remote"] = [
    {
        "id": i,
        "local": local.get_feature_flag("experiment", i, only_evaluate_locally=True),
        "remote": remote.get_feature_flag("experiment", i, send_feature_flag_events=False),
        "local_company": local.feature_enabled(
            "company-rollout", i, groups={"company": f"c-{i}"}, only_evaluate_locally=True
        ),
        "remote_company": remote.feature_enabled(
            "company-rollout", i, groups={"company": f"c-{i}"}, send_feature_flag_events=False
        ),
    }
    for i in ids
]
out["local_group"] = local.feature_enabled(
    "enterprise-companies",
    "ana",
    groups={"company": "acme"},
    group_properties={"company": {"plan": "enterprise"}},
    only_evaluate_locally=True,
)
out["local_all"] = local.get_all_flags(
    "ana",
    groups={"company": "acme"},
    person_properties={"email": "ana@acme.io"},
    group_properties={"company": {"plan": "enterprise"}},
    only_evaluate_locally=True,
)
local.flush()
local.shutdown()
remote.shutdown()
print(json.dumps(out))
