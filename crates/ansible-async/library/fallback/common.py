# --- common.py: what the Python parts of library/ share (assemble.sh puts it in place) ---
# Comes after the rules protocol-rules prints (WRAPPER_USAGE, INVALID_JOB_ID, ...) and the
# line that names PROGRAM. Python 2.7 and 3.6+, standard library only.
import os
import sys


def missing(error):
    # A host's Python without part of the standard library (Debian's python3-minimal has no
    # json): one failed result that says what is missing, written without json.
    print('{"failed": true, "msg": "%s: %s: %s (install python3)"}' % (PROGRAM, sys.executable, error))
    sys.exit(1)


try:
    import errno
    import json
    import stat
except ImportError as e:
    missing(e)

PY2 = sys.version_info[0] == 2


def quote(value):
    # How a message shows a value the user gave (the native program's rules::quote).
    return json.dumps(value, ensure_ascii=False)


def dumps(value):
    # As the native program writes JSON: compact, keys sorted.
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def reply(value, code):
    sys.stdout.write(dumps(value) + "\n")
    sys.stdout.flush()
    os._exit(code)


def fail(msg, **extra):
    reply(dict(extra, failed=True, msg=msg), 1)


def rust_io_error(err):
    # How the native program words an OS error.
    if err.errno:
        return "%s (os error %d)" % (os.strerror(err.errno), err.errno)
    return str(err)


def job_id_error(job_id):
    """Why `job_id` is not a job id (the message), or None."""
    why = None
    if not job_id:
        why = JOB_ID_EMPTY
    elif len(job_id if isinstance(job_id, bytes) else job_id.encode("utf-8")) > JOB_ID_MAX_LEN:
        why = JOB_ID_TOO_LONG
    elif job_id.startswith("."):
        why = JOB_ID_HIDDEN
    elif "/" in job_id:
        why = JOB_ID_SLASH
    elif not all(c.isalnum() and ord(c) < 128 or c in "._-" for c in job_id):
        why = JOB_ID_CHARS
    return why and INVALID_JOB_ID.format(id=quote(job_id), why=why)


def expand_dir(path):
    """~, ~/x, $HOME/x and ${HOME}/x are the effective user's passwd home (else $HOME);
    ~name is name's (the native program's user::expand_user)."""
    for var in ("${HOME}", "$HOME"):
        if (path + "/").startswith(var + "/"):
            path = "~" + path[len(var):]
    if path[:1] != "~":
        return path
    name, slash, tail = path[1:].partition("/")
    import pwd
    try:
        home = (pwd.getpwnam(name) if name else pwd.getpwuid(os.geteuid())).pw_dir
    except KeyError:
        home = None if name else os.environ.get("HOME")
    # A home of "/" is "/" alone, and nothing before another "/".
    return (home.rstrip("/") or "/"[:not slash]) + slash + tail if home else path


def dir_refusal(path):
    """Why the existing async dir `path` is not safe to keep job files in (the message), or
    None; an OSError when it cannot be looked at."""
    st = os.lstat(path)
    why = None
    if stat.S_ISLNK(st.st_mode):
        why = DIR_SYMLINK
    elif not stat.S_ISDIR(st.st_mode):
        why = DIR_NOT_A_DIR
    elif st.st_uid != os.geteuid():
        why = DIR_NOT_OWNED.format(uid=st.st_uid, euid=os.geteuid())
    elif st.st_mode & 0o022:
        why = DIR_WRITABLE.format(mode="%04o" % (st.st_mode & 0o7777))
    return why and UNSAFE_DIR.format(path=path, why=why)
# --- end of common.py ---
