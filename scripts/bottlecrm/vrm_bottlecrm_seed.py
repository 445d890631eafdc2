"""Give a fresh BottleCRM database an org, its admin and a personal access token.

Run with the BottleCRM virtualenv's python and DJANGO_SETTINGS_MODULE set
(tests/connectors/bottlecrm.py does). Reads a JSON request on stdin:

  {"email": ..., "org_name": ..., "scopes": ["contacts:read", ...],
   "contact_custom_fields": [{"key": ..., "label": ..., "field_type": "text"}]}

and writes one JSON line on stdout: {"org_id", "profile_id", "user_id", "token"}.

BottleCRM has no password login and no endpoint that mints a first token, so
this goes through its ORM, as its own POST /api/org/ and token views do:
Org, then Profile(role=ADMIN), then PersonalAccessToken.generate().
"""

import json
import sys

import django

django.setup()

from common.models import (  # noqa: E402
    CustomFieldDefinition,
    Org,
    PersonalAccessToken,
    Profile,
    User,
)
from common.scopes import normalize_scope  # noqa: E402
from django.db import transaction  # noqa: E402


def main() -> None:
    request = json.load(sys.stdin)
    # generate() stores scopes unchecked; the token view validates them first.
    scopes = [normalize_scope(s) for s in request["scopes"]]
    with transaction.atomic():
        user = User.objects.create_user(email=request["email"])
        org = Org.objects.create(name=request["org_name"])
        profile = Profile.objects.create(user=user, org=org, role="ADMIN")
        for order, field in enumerate(request.get("contact_custom_fields", [])):
            CustomFieldDefinition.objects.create(
                org=org,
                target_model="Contact",
                key=field["key"],
                label=field.get("label", field["key"]),
                field_type=field.get("field_type", "text"),
                is_filterable=True,
                display_order=order,
            )
        raw, _ = PersonalAccessToken.generate(
            profile=profile, name="vrm connector tests", scopes=scopes, expires_at=None
        )
    answer = {
        "org_id": str(org.id),
        "profile_id": str(profile.id),
        "user_id": str(user.id),
        "token": raw,
    }
    sys.stdout.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
