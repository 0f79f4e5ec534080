# Sourced by scripts/demo and scripts/test: make .venv if it is missing, and
# install the project into it only when pyproject.toml changed since the last
# install. The stamp .venv/.inert-installed holds one line per installed target
# ("SHA256-of-pyproject.toml TARGET"); an editable install follows source edits
# by itself, so only the project's metadata can make a new install necessary.

# ensure_venv TARGET [SATISFIED-BY...]: install TARGET (e.g. ".[dev]") unless the
# stamp says that TARGET, or a target listed after it, was installed from the
# current pyproject.toml.
ensure_venv() {
    local target=$1
    local python=${PYTHON:-python3}
    local stamp=.venv/.inert-installed
    local digest
    if [ ! -x .venv/bin/python ]; then
        echo "== making .venv with $python"
        "$python" -m venv .venv
        rm -f "$stamp"
    fi
    digest=$(.venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')
    if [ -f "$stamp" ]; then
        local wanted
        for wanted in "$@"; do
            if grep -qxF -- "$digest $wanted" "$stamp"; then
                return 0
            fi
        done
        if ! grep -q -- "^$digest " "$stamp"; then
            rm -f "$stamp"  # pyproject.toml changed: every earlier install is stale
        fi
    fi
    echo "== installing the project ($target) into .venv: pyproject.toml is new or changed"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$target"
    echo "$digest $target" >> "$stamp"
}
