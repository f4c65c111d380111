#!/bin/sh
# Installs the bundled hostfiles agent on this host: the bundle, a `hostfiles-agent` command, the systemd unit, a
# config (made once, never replaced) and the agent's key. Starts nothing: it prints the next steps.
# Usage: install.sh [--prefix DIR (/usr/local)] [--node NODE (/usr/bin/node)] [--trusted-key BASE64] [--destdir DIR]
#   (--help: this, exit 0)
#   --trusted-key: the controller's public key (`hostfiles init` prints it), written into a new config's trustedKeys.
#   --destdir: install below DIR instead of / (packaging, tests); the paths written into files stay the real ones.
set -eu
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
prefix=/usr/local
node=/usr/bin/node
destdir=
trusted=
usage_line="usage: install.sh [--prefix DIR] [--node NODE] [--trusted-key BASE64] [--destdir DIR] [--help]"
usage() { echo "$usage_line" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
  [ $# -ge 2 ] || usage
  case $1 in
    --prefix) prefix=$2 ;;
    --node) node=$2 ;;
    --destdir) destdir=$2 ;;
    --trusted-key) trusted=$2 ;;
    *) usage ;;
  esac
  shift 2
done
# Both go into a generated wrapper and a sed replacement: only plain absolute paths, nothing a shell or sed reads.
plain_path() {
  case $2 in
    /*) case $2 in *[!A-Za-z0-9._/+-]*) ;; *) return 0 ;; esac ;;
  esac
  echo "install.sh: $1 must be an absolute path of letters, digits and . _ / + - only (^/[A-Za-z0-9._/+-]*\$)" >&2
  exit 2
}
plain_path --prefix "$prefix"
plain_path --node "$node"
# The form the agent's config takes (base64 of 32 bytes, one spelling: 44 bytes, all of them one line of that form),
# checked now: else the agent would refuse its config at its first start, after everything was installed.
if [ -n "$trusted" ] && { [ "$(printf '%s' "$trusted" | wc -c)" -ne 44 ] ||
  ! printf '%s\n' "$trusted" | grep -Eqx '[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]='; }; then
  echo "install.sh: --trusted-key must be the controller's public key as \`hostfiles init\` prints it (base64 of 32 bytes, 44 characters)" >&2
  exit 2
fi
bundle=$here/hostfiles-agent.cjs
[ -f "$bundle" ] && [ -f "$here/hostfiles-agent.service" ] || { echo "install.sh: run it from the bundle's directory (pnpm bundle)" >&2; exit 2; }
if [ ! -x "$node" ]; then
  echo "install.sh: no Node at $node: \`apt-get install nodejs\` (Debian 12's 18.20 will do), or pass --node" >&2
  exit 2
fi
# Checked here in syntax any Node parses: a Node too old to parse the bundle could not say what it needs.
min_node=@MIN_NODE@
if ! "$node" -e 'var h = process.versions.node.split(".").map(Number), n = process.argv[1].split(".").map(Number);
  process.exit(h[0] !== n[0] ? (h[0] > n[0] ? 0 : 1) : h[1] !== n[1] ? (h[1] > n[1] ? 0 : 1) : h[2] >= n[2] ? 0 : 1)' "$min_node"; then
  echo "install.sh: the agent needs Node $min_node or later, $node is $("$node" --version)" >&2
  exit 2
fi
version=$("$node" "$bundle" --version) || exit 2

lib=$prefix/lib/hostfiles
# Not /etc/systemd/system: that is the operator's, and a unit there would be overwritten by every run. systemd reads
# /usr/local/lib/systemd/system too (systemd.unit(5), the system unit search path), below /etc/systemd/system and
# drop-ins (`systemctl edit hostfiles-agent`), where local changes go and stay.
units=/usr/local/lib/systemd/system
install -d -m 0755 "$destdir$lib" "$destdir$prefix/bin" "$destdir$units"
# Each file written beside its place and moved in: a failed run never leaves a half-written one.
put() { chmod "$1" "$2.new" && mv -f "$2.new" "$2"; }
cp "$bundle" "$destdir$lib/hostfiles-agent.cjs.new"
put 0755 "$destdir$lib/hostfiles-agent.cjs"
printf '#!/bin/sh\nexec %s %s "$@"\n' "$node" "$lib/hostfiles-agent.cjs" >"$destdir$prefix/bin/hostfiles-agent.new"
put 0755 "$destdir$prefix/bin/hostfiles-agent"
sed -e "/^Exec/ s|/usr/local/lib/hostfiles/|$lib/|" -e "/^Exec/ s|/usr/bin/node |$node |" "$here/hostfiles-agent.service" \
  >"$destdir$units/hostfiles-agent.service.new"
put 0644 "$destdir$units/hostfiles-agent.service"

# The config: made once from the example, with a hostUuid of its own; an existing one is the operator's.
config=/etc/hostfiles/agent.json
install -d -m 0755 "$destdir/etc/hostfiles"
# Whether this run wrote --trusted-key into the config (never into a kept one): what "Next" says of trustedKeys.
trusted_written=
if [ -e "$destdir$config" ]; then
  echo "kept $config (exists)"
  [ -z "$trusted" ] || echo "install.sh: --trusted-key was not written into the kept $config: add it to its trustedKeys yourself" >&2
else
  (umask 077 && "$node" "$bundle" print-config-example >"$destdir$config.new")
  HOSTFILES_UUID=$(cat /proc/sys/kernel/random/uuid) HOSTFILES_TRUSTED=$trusted "$node" -e '
    const fs = require("node:fs");
    const [file] = process.argv.slice(1);
    const config = JSON.parse(fs.readFileSync(file, "utf8"));
    config.hostUuid = process.env.HOSTFILES_UUID;
    if (process.env.HOSTFILES_TRUSTED) config.trustedKeys = [process.env.HOSTFILES_TRUSTED];
    fs.writeFileSync(file, JSON.stringify(config, null, 2) + "\n");
  ' "$destdir$config.new"
  mv "$destdir$config.new" "$destdir$config"
  echo "made $config"
  trusted_written=$trusted
fi

# The agent's key, now rather than at first start, so that its fingerprint can be given to the controller first.
state=/var/lib/hostfiles-agent
install -d -m 0700 "$destdir$state"
if [ -e "$destdir$state/agent.key" ]; then
  echo "kept $state/agent.key (exists)"
else
  "$node" "$bundle" keygen --out "$destdir$state/agent.key" >/dev/null
  echo "made $state/agent.key"
fi

echo "installed hostfiles-agent $version: $lib/hostfiles-agent.cjs, $prefix/bin/hostfiles-agent, $units/hostfiles-agent.service"
echo "local changes to the unit: systemctl edit hostfiles-agent (a drop-in; this file is replaced by the next install)"
cat <<NEXT
Next:
  1. $config: trustedKeys (the controller's public key, \`hostfiles init\` prints it)$([ -n "$trusted_written" ] && echo ": set"), listen, roots, ownership.
  2. systemctl daemon-reload && systemctl enable --now hostfiles-agent
     journalctl -u hostfiles-agent -o cat    # root_made (a new host), then listening
  3. hostfiles-agent info --config $config    # the fingerprint; on the controller:
     hostfiles host add NAME https://THIS-HOST:7441 --expect-key FINGERPRINT
NEXT
