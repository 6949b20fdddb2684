"""Evaluates flag definitions with posthog-python's own local evaluation.

Usage: python sdk_local_evaluation.py INPUT.json
INPUT: {"definitions": <a /flags/definitions body>, "cases": [{"distinct_id",
"groups", "person_properties", "group_properties"}, ...]}
Prints, per case, {"flags": {key: value}, "payloads": {key: payload}}.
"""

import json
import sys

from posthog import Client

with open(sys.argv[1]) as f:
    data = json.load(f)

# No network: the definitions are injected, and only local answers are asked for.
client = Client(
    "phc_conformance",
    host="http://127.0.0.1:9",
    personal_api_key="phx_conformance",
    send=False,
    sync_mode=True,
)
client._update_flag_state(
    {
        "flags": data["definitions"]["flags"],
        "group_type_mapping": data["definitions"]["group_type_mapping"],
        "cohorts": data["definitions"].get("cohorts", {}),
    }
)

results = []
for case in data["cases"]:
    answer = client.get_all_flags_and_payloads(
        case["distinct_id"],
        groups=case["groups"],
        person_properties=case["person_properties"],
        group_properties=case["group_properties"],
        only_evaluate_locally=True,
    )
    results.append(
        {"flags": answer["featureFlags"], "payloads": answer["featureFlagPayloads"]}
    )
json.dump(results, sys.stdout)
