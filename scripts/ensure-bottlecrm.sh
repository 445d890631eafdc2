#!/usr/bin/env bash
# Makes sure BottleCRM (PyPI django-crm), the real CRM the connector's
# integration tests run against, is installed and its database migrated:
#   $BOTTLECRM_HOME/venv             Python 3.12 virtualenv with django-crm and
#                                    scripts/bottlecrm/constraints.txt
#   $BOTTLECRM_HOME/template.sqlite3 every migration applied, copied per test
#                                    (migrating takes about 2 minutes, a copy
#                                    a few milliseconds)
#   $BOTTLECRM_HOME/stamp            version and constraints hash of the above
# BOTTLECRM_HOME defaults to ~/.cache/vrm-bottlecrm. When the stamp matches,
# this exits at once. BOTTLECRM_PYTHON names the interpreter if the search
# below does not find one. Prints one line saying what it did.
# tests/connectors/bottlecrm.py reads the same layout and stamp.
set -euo pipefail

version=1.35.0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
config="$here/bottlecrm"
constraints="$config/constraints.txt"
home="${BOTTLECRM_HOME:-$HOME/.cache/vrm-bottlecrm}"
venv="$home/venv"
template="$home/template.sqlite3"
log="$home/ensure.log"
want="django-crm==$version constraints-sha256=$(sha256sum "$constraints" | cut -c1-16)"

in_place() {
  [ -f "$home/stamp" ] && [ "$(cat "$home/stamp")" = "$want" ] &&
    [ -f "$template" ] && "$venv/bin/python" -c '' 2>/dev/null
}

if in_place; then
  echo "ensure-bottlecrm: already in place ($want) in $home"
  exit 0
fi

mkdir -p "$home"
# Two runs at once (two CI jobs, two shells) take turns; the second finds the
# work done.
exec 9>"$home/.lock"
flock 9
if in_place; then
  echo "ensure-bottlecrm: already in place ($want) in $home"
  exit 0
fi

find_python() {
  local candidate
  for candidate in "${BOTTLECRM_PYTHON:-}" python3.12 \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 \
    /root/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12; do
    [ -n "$candidate" ] || continue
    # A pyenv shim exists even when no 3.12 is selected; ask it for real.
    if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

fail() {
  echo "ensure-bottlecrm: $1 (log: $log)" >&2
  tail -n 20 "$log" >&2 || true
  exit 1
}

started=$SECONDS
: >"$log"
rm -f "$home/stamp"
python="$(find_python)" || {
  echo "ensure-bottlecrm: no Python 3.12 found; set BOTTLECRM_PYTHON" >&2
  exit 1
}
rm -rf "$venv"
"$python" -m venv "$venv" >>"$log" 2>&1 || fail "could not create $venv"
"$venv/bin/pip" install --disable-pip-version-check --no-input -q \
  -c "$constraints" "django-crm==$version" >>"$log" 2>&1 ||
  fail "pip install django-crm==$version failed"

rm -f "$template" "$template.tmp"
(
  cd "$home"
  PYTHONPATH="$config" DJANGO_SETTINGS_MODULE=vrm_bottlecrm_settings \
    BOTTLECRM_DB="$template.tmp" BOTTLECRM_LOGS="$home" PYTHONDONTWRITEBYTECODE=1 \
    "$venv/bin/django-admin" migrate --noinput -v 0
) >>"$log" 2>&1 || fail "django-admin migrate failed"
mv "$template.tmp" "$template"
echo "$want" >"$home/stamp"
echo "ensure-bottlecrm: installed $want with $("$venv/bin/python" -V) and migrated $template in $((SECONDS - started)) s"
