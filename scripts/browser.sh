#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright (Playwright's own browser download fails here).
set -u
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }
  else
    sudo -n apt-get install -y -q chromium >/dev/null 2>&1 || true
  fi
fi
[ -x /usr/bin/chromium ] || echo "warning: /usr/bin/chromium missing; browser tests will be skipped" >&2
exit 0
