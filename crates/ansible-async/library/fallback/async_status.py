# --- async_status.py: async_status's answer where no native program runs (assemble.sh puts
# it in place) ---
# library/async_status runs this with the host's Python when it finds no native program:
# `python -c CODE JSON`, JSON being the arguments ansible wrote into the script. It answers
# as the native program does, deciding by the job file's top-level keys: the texts come
# from the rules protocol-rules prints, the checks from common.py (both put first). Unlike
# the program it looks only in the async dir the arguments name, does not tell a lost job
# from a running one, does not add `elapsed` or `invocation`, and does not wait for a job's
# end (its last seconds, or `_wait`): it takes `_wait` and `_wait_reserve` unchecked.
def string(args, key):
    value = args.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float, str, type(u""), type(None))):
        fail(NOT_A_STRING.format(key=key, value=dumps(value)))
    # ansible's str type: a number is taken as its text.
    return json.dumps(value) if isinstance(value, (int, float)) else value


def main(text):
    try:
        args = json.loads(text)
    except ValueError:
        fail(ARGS_NOT_JSON)
    if not isinstance(args, dict):
        fail(ARGS_NOT_OBJECT)
    unknown = sorted(k for k in args if k not in STATUS_ARGS and not k.startswith(ANSIBLE_ARG_PREFIX))
    if unknown:
        fail(UNSUPPORTED.format(module="async_status", keys=", ".join(unknown), known=STATUS_ARGS_SHOWN))
    jid = string(args, "jid")
    if jid is None:
        fail(MISSING.format(keys="jid"))
    mode = string(args, "mode")
    if mode not in (None,) + STATUS_MODES:
        fail(NOT_A_CHOICE.format(key="mode", choices=", ".join(STATUS_MODES), value=mode))
    async_dir = string(args, "_async_dir")
    path = expand_dir(async_dir or os.environ.get(ASYNC_DIR_ENV) or DEFAULT_ASYNC_DIR)
    job = os.path.join(path, jid)

    # Every answer names the job file (the path expanded), as the program's do.
    key = "erased" if mode == "cleanup" else "results_file"

    def answer(msg=None, **result):
        result.update(ansible_job_id=jid)
        result.setdefault(key, job)
        if msg:
            fail(msg, **result)
        reply(result, 0)

    invalid = job_id_error(jid)
    if invalid:
        answer(invalid)
    over = {"started": True, "finished": True}
    refusal = os.path.lexists(path) and dir_refusal(path)
    if refusal or not os.path.lexists(job):
        answer(refusal or NOT_FOUND, searched=[path], **over)
    if mode == "cleanup":
        for name in (job, job + ".log"):
            try:
                os.unlink(name)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    answer(UNREMOVABLE.format(error="%s: %s" % (name, rust_io_error(e))))
        answer()
    try:
        with os.fdopen(os.open(job, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as f:
            data = f.read()
    except (IOError, OSError) as e:
        answer(UNREADABLE.format(error="%s: %s" % (job, rust_io_error(e))), **over)
    if not data.strip():
        answer(started=True, finished=False)
    # Python 2 has no surrogateescape (a LookupError): strict UTF-8 there.
    try:
        result = json.loads(data.decode("utf-8", "surrogateescape"))
    except (ValueError, LookupError):
        result = None
    if not isinstance(result, dict):
        answer(UNPARSABLE.format(data=data.decode("utf-8", "replace")), **over)
    # Decided by the top-level keys, as the program and ansible-core's own module decide.
    if RUNNING_KEY in result:
        if "lease" in result:
            # Asked for: the job's lease starts again.
            try:
                os.utime(job, None)
            except OSError:
                pass
        result.setdefault("finished", False)
    else:
        result.update(finished=True, ansible_job_id=jid)
    result.setdefault(key, job)
    reply(result, 0)


main(sys.argv[1])
# --- end of async_status.py ---
