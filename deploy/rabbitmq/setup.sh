#!/bin/sh
# compose's RabbitMQ entrypoint: renders definitions.json (user, the vhost with quorum queues as
# its default type, the dead-letter policies: the same as deploy/k8s/rabbitmq-config.yaml) from
# the environment, points rabbitmq.conf at it, then runs the image's own entrypoint ("$@").
# Definitions are imported at every boot, so a changed password applies at the next restart.
# Directories can be overridden for tests.
set -eu
src="${RABBITMQ_TEMPLATES:-/xueji-rabbitmq}"
etc="${RABBITMQ_CONFIG_DIR:-/etc/rabbitmq}"
fail() { echo "rabbitmq setup: $*" >&2; exit 1; }
vhost="${RABBITMQ_VHOST:-xueji}"
for value in "${RABBITMQ_USER:-}" "${RABBITMQ_PASSWORD:-}" "$vhost"; do
  case "$value" in
    "" | *[!A-Za-z0-9._~-]*) fail "user, password and vhost: letters, digits and -._~ only, not empty" ;;
  esac
done
mkdir -p "$etc/conf.d"
(
  umask 077
  sed -e "s/__RABBITMQ_USER__/$RABBITMQ_USER/g" -e "s/__RABBITMQ_PASSWORD__/$RABBITMQ_PASSWORD/g" \
    -e "s/__RABBITMQ_VHOST__/$vhost/g" "$src/definitions.json" > "$etc/definitions.json"
)
# With definitions loaded at boot RabbitMQ creates no default user or vhost: they come from the file.
printf 'load_definitions = %s/definitions.json\n' "$etc" > "$etc/conf.d/20-xueji.conf"
# The image's entrypoint drops to the rabbitmq user, which must read the (private) file.
if id rabbitmq >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  chown rabbitmq "$etc/definitions.json"
fi
echo "rabbitmq setup: definitions written for vhost $vhost"
exec "$@"
