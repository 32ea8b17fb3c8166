#!/bin/sh
IFS= read -r j <<'ARGS' || :
<<INCLUDE_ANSIBLE_MODULE_JSON_ARGS>>
ARGS
d=${j#*\"_async_dir\": \"}
d=${d%%\"*}
case $d in [~$]*/*) d=$HOME/${d#*/} ;; esac
{ read -r a </proc/sys/kernel/arch; } 2>/dev/null || a=$(uname -m 2>/dev/null)
case $d in /*) [ -L "$d/.bin" ] || for p in "$d/.bin/ansible-async-@PAYLOAD_ID@.$a" "$d/.bin/ansible-async-"*".$a"; do
    [ -f "$p" ] && [ -x "$p" ] && [ -O "$p" ] && exec "$p" async_status --args-json "$j" </dev/null
done ;; esac
for p in python3 python python2 /usr/libexec/platform-python; do
    command -v $p >/dev/null && exec $p -c 'import binascii,zlib;exec(zlib.decompress(binascii.a2b_base64(b"@STATUS_PY@"),-15))' "$j"
done
echo '{"failed": true, "msg": "async_status: no ansible-async program or python here"}'
exit 1
