#!/usr/bin/env bash
# The service on the Node LTS lines the main suite (this machine's Node 20) does not run, each where a
# uWebSockets.js build serves it (docs/node-support.md): the API end-to-end tests on Node 22 on this machine,
# and on Node 24 and 22 inside a Debian 13 root (glibc 2.41) made with debootstrap; and, where this machine's
# glibc is older than 2.38, Node 24 here must refuse to start with the message naming what works.
# Needs node_modules and dist/ (run after `npm ci && npm test`). Node comes from the npm registry's `node`
# package, Debian's packages from its mirror; both are cached under $CACHE between runs on one machine.
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."
TESTS=(test/e2e/api.test.ts test/unit/uws.test.ts)
UWS_BUILD="console.log((await import('./dist/http/uws.js')).uwsBuild)"

# Inside the namespace: mount what the root needs, then the tests under each Node, in /srv/repo.
if [ "${1:-}" = --in-root ]; then
  root=$2
  mounted=()
  trap 'for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}"; done' EXIT
  mnt() { mkdir -p "${*: -1}" && mount "$@" && mounted+=("${*: -1}"); }
  inside() { chroot "$root" /usr/bin/env -i -C /srv/repo PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root CI=true "$@" </dev/null; }
  mnt -t proc proc "$root/proc"
  mnt -t tmpfs tmpfs "$root/dev/shm" # PostgreSQL's shared memory
  mnt -t tmpfs tmpfs "$root/tmp"     # test databases and sockets: nothing is left in the cached root
  mnt --bind "$PWD" "$root/srv/repo"
  for dir in "${@:3}"; do
    mnt --bind -o ro "$dir" "$root/opt/${dir##*/}"
    node=/opt/${dir##*/}/node_modules/node/bin/node
    echo "-- Node $(inside "$node" --version): uWebSockets.js build $(inside "$node" --input-type=module -e "$UWS_BUILD")"
    inside "$node" node_modules/vitest/vitest.mjs run "${TESTS[@]}"
  done
  exit 0
fi
REPO=$PWD
NODE22=22.23.3
NODE24=24.21.0
SUITE=trixie
PACKAGES=redis-server # embedded-postgres brings its own PostgreSQL, which runs there
CACHE=${RECSVC_CI_CACHE:-/var/cache/recsvc-ci}
ROOT=$CACHE/$SUITE-minbase-$PACKAGES
started=$SECONDS

mkdir -p "$CACHE"
exec 9>"$CACHE/lock" && flock 9 # one run at a time builds or uses the cached root

# The `node` package's install script fetches the matching node-linux-<arch> package from the registry.
node_bin() {
  local dir=$CACHE/node-$1
  if [ ! -x "$dir/node_modules/.bin/node" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "node@$1" >/dev/null
  fi
  echo "$dir/node_modules/node/bin/node"
}

# Vitest under the given node: tests spawn the service with process.execPath, so it runs on that Node too.
run_tests() { "$1" node_modules/vitest/vitest.mjs run "${TESTS[@]}"; }
uws_build() { "$1" --input-type=module -e "$UWS_BUILD"; }

echo "== Node $NODE22 on this machine ($(ldd --version | head -1))"
node22=$(node_bin "$NODE22")
echo "uWebSockets.js build: $(uws_build "$node22")"
run_tests "$node22"

node24=$(node_bin "$NODE24")
glibc_minor=$(getconf GNU_LIBC_VERSION | sed 's/.*2\.//')
if [ "$glibc_minor" -lt 38 ]; then
  echo "== Node $NODE24 on this machine (glibc 2.$glibc_minor): start-up must refuse, naming what works"
  set +e
  refusal=$(timeout 60 "$node24" dist/main.js 2>&1 >/dev/null)
  code=$?
  set -e
  echo "$refusal"
  expected="The builds on the npm registry serve Node 20 and 22 on glibc ≥ 2.27, Node 24 on glibc ≥ 2.38"
  if [ "$code" -ne 1 ] || [[ "$refusal" != *"No uWebSockets.js build loads on Node v$NODE24"*"$expected"* ]]; then
    echo "expected exit 1 and the supported combinations, got exit $code" >&2
    exit 1
  fi
fi

# The root is made once and reused; a half-made one (interrupted debootstrap) never is.
if [ ! -e "$ROOT/.complete" ] || [ -n "$(find "$ROOT/.complete" -mtime +30)" ]; then
  command -v debootstrap >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  echo "== debootstrap $SUITE into $ROOT"
  rm -rf "$ROOT.partial" "$ROOT"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT.partial" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  touch "$ROOT.partial/.complete" && mv "$ROOT.partial" "$ROOT"
fi

echo "== Node $NODE24 and $NODE22 in Debian $SUITE ($(chroot "$ROOT" ldd --version | head -1))"
# A private mount namespace: its mounts vanish with it even if this is killed; the trap unmounts them in order.
unshare --mount --propagation private bash "$SELF" --in-root "$ROOT" "$CACHE/node-$NODE24" "$CACHE/node-$NODE22"
echo "node-lts: passed in $((SECONDS - started)) s"
