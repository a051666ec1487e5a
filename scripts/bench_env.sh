#!/usr/bin/env bash
# .bench-venv: the environment of benchmarks/kt_real.py, with pyBKT's C++ extension built (not its pure-Python form).
#
# pyBKT 1.4.3's setup.py builds three C++ extensions (Eigen is bundled in its sdist; g++ with OpenMP is all it needs)
# but imports numpy to find numpy's headers, and wraps the whole build in a bare `except:` that falls back to the
# pure-Python package without a word. A plain `pip install pyBKT` builds in an isolated environment that has no
# numpy, so it always falls back. Here numpy goes in first and pyBKT is built without isolation and without pip's
# wheel cache (which may hold a pure-Python wheel from an earlier install); then the import is checked.
set -eu
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.bench-venv}

if ! command -v g++ >/dev/null; then
  echo "installing g++ for pyBKT's C++ extension"
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q g++ >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q g++ >/dev/null 2>&1; }
  else
    sudo -n apt-get install -y -q g++ >/dev/null 2>&1 || true
  fi
fi

"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q 'numpy<2.4' setuptools wheel
compiled() { "$VENV/bin/python" -c "from pyBKT.fit import E_step; assert E_step.__file__.endswith('.so')" 2>/dev/null; }
if ! compiled; then  # absent, or the pure-Python fallback of an earlier install: (re)build it
  "$VENV/bin/pip" install -q --force-reinstall --no-build-isolation --no-cache-dir --no-binary pyBKT --no-deps \
    'pyBKT==1.4.3'
fi
"$VENV/bin/pip" install -q -e '.[bench]'
"$VENV/bin/python" - <<'PY'
try:
    from pyBKT.fit import E_step  # only the C++ build has this module
except ImportError:
    raise SystemExit("pyBKT installed without its C++ extension; see scripts/bench_env.sh") from None
print(f"pyBKT C++ extension: {E_step.__file__}")
PY
