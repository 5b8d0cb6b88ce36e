#!/bin/sh
# The official redis image's entrypoint, in substance: options or a .conf
# as the first argument mean redis-server; started as root, redis-server
# gets /data handed to `redis` and is re-run as `redis` through gosu.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec gosu redis "$0" "$@"
fi

# Files the server writes are for its own user only, as in the official image.
um="$(umask)"
if [ "$um" = '0022' ]; then
	umask 0077
fi

exec "$@"
