# --- async_wrapper.py: the portable fallback (assemble.sh puts it in place) ---
# What library/async_wrapper runs on a host where none of its native programs runs
# (another architecture, another OS). It writes the same job files, results, messages and
# log as the native program, so async_status (script or program) and `async_job list/show`
# read its jobs. Python 2.7 and 3.6+, standard library only; fallback.sh runs it from a
# here-document, so it is never a file on the host. It follows the rules protocol-rules
# prints and common.py (assemble.sh puts both first): texts and bounds come from there.
#
# One process per job besides the module, as the native program: ansible's call forks,
# the child starts a session and forks the supervisor, which writes the job file, starts
# the module in a process group of its own with stdout/stderr in unlinked files, answers
# up a pipe, and then waits for the module, a stop signal or the time limit, whichever
# first (signals wake a select() through signal.set_wakeup_fd: no polling).
try:
    import re
    import select
    import signal
    import socket
    import time
except ImportError as e:
    missing(e)

STARTED = b"started"
# Handled by the supervisor: its children's exits, being asked to stop, and SIGUSR1,
# which is how `async_job terminate` asks.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# Why the launcher fell back (it says so in the environment); the module does not inherit it.
REASON = os.environ.pop("ASYNC_WRAPPER_FALLBACK_REASON", "")
# Limits and grace periods on a clock that wall-clock changes do not move (Python 3.3+).
clock = getattr(time, "monotonic", time.time)


def text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def output_text(data):
    # A module's output as ansible-core reads it: bytes that are not UTF-8 become lone
    # surrogates, which json.dumps writes as \udcXX escapes (Python 2 has no such handler).
    return data.decode("utf-8", "replace" if PY2 else "surrogateescape")


def strerror(err):
    return os.strerror(err.errno) if err.errno else str(err)


def signal_name(number):
    for name in dir(signal):
        if name.startswith("SIG") and not name.startswith("SIG_") and getattr(signal, name) == number:
            if name not in ("SIGIOT", "SIGCLD", "SIGPOLL"):
                return name
    return "signal %d" % number


def shell_quote(arg):
    safe = "_@%+=:,./-"
    if arg and all(c.isalnum() or c in safe for c in arg):
        return arg
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def timestamp(secs):
    millis = int(round(secs * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000)) + ".%03dZ" % (millis % 1000)


# --- the command line ---------------------------------------------------------------------------

class Invocation(object):
    def __init__(self, args):
        if len(args) < 4:
            fail(WRAPPER_USAGE)
        self.jid = args[0]
        self.time_limit = whole(args[1])
        if self.time_limit is None or self.time_limit > MAX_TIME_LIMIT:
            fail(BAD_TIME_LIMIT.format(max=MAX_TIME_LIMIT, value=quote(text(args[1]))))
        third = args[2].lower()
        if len(args) >= 5 and third in ("true", "false"):
            self.protocol = "command"
            self.preserve_tmp = third == "true"
            self.module_path = args[3]
            self.command = args[4:]
            self.args_file = None
        else:
            self.protocol = "legacy"
            self.module_path = args[2]
            self.args_file = None if args[3] == "_" else args[3]
            self.command = None
            # Only a folder ansible made for this task may be removed afterwards.
            self.preserve_tmp = (len(args) > 4 and args[4] == "-preserve_tmp") or not self.in_tmp_dir()

    def in_tmp_dir(self):
        return "-tmp-" in os.path.basename(os.path.dirname(self.module_path))

    def argv(self):
        """The command that runs the module; in the legacy protocol the #! interpreter is
        named explicitly, so a module in a noexec tmp dir still runs."""
        if self.command is not None:
            return list(self.command)
        with open(self.module_path, "rb") as f:
            head = f.read(1024)
        argv = []
        if head.startswith(b"#!"):
            end = head.find(b"\n")
            if end < 0:
                raise OSError(errno.EINVAL, "%s: the #! line is longer than 1 KiB" % self.module_path)
            argv = [text(word) if not PY2 else word for word in head[2:end].split()]
        argv.append(self.module_path)
        if self.args_file is not None:
            argv.append(self.args_file)
        return argv

    def display_command(self):
        if self.command is None:
            return self.module_path + ("" if self.args_file is None else " " + self.args_file)
        return " ".join(shell_quote(text(a)) for a in self.command)

    def display_args(self):
        args = [self.jid, str(self.time_limit)]
        if self.command is not None:
            args.append(str(self.preserve_tmp).lower())
        return " ".join(args + [self.module_path, self.display_command()])

    def stock_watchdog(self):
        """The watchdog ansible-core's own wrapper would have had (see the native program's
        deadline rules), told by the _ansible_version among the module's arguments (its
        arguments file, else the module file); when none says, the one of the newest release
        that speaks this protocol."""
        for path in self.args_files() + [self.module_path]:
            try:
                with open(path, "rb") as f:
                    version = ansible_version_in(f.read(8 << 20))
            except (IOError, OSError):
                continue
            if version:
                return watchdog_of(version)
        return watchdog_of(self.newest_version())

    def args_files(self):
        """The legacy protocol's arguments file; in the command protocol, what the command
        names after the module (ansible puts the arguments file of other modules last)."""
        if self.command is None:
            return [] if self.args_file is None else [self.args_file]
        if self.module_path not in self.command:
            return []
        return list(self.command[self.command.index(self.module_path) + 1:])

    def newest_version(self):
        """The newest ansible-core that speaks this protocol: the last patch of the minor
        before COMMAND_PROTOCOL_SINCE, or any later release."""
        newest = float("inf")
        if self.command is None:
            return (COMMAND_PROTOCOL_SINCE[0], COMMAND_PROTOCOL_SINCE[1] - 1, newest)
        return (newest, newest, newest)

    def tmp_dir_to_remove(self):
        if self.preserve_tmp or not self.in_tmp_dir():
            return None
        return os.path.dirname(self.module_path)


def whole(word):
    """A whole number of seconds as Rust's u64 parse takes it (surrounding blanks and one '+'
    allowed); None when it is not one."""
    word = word.strip()
    found = re.match(r"\+?([0-9]+)$", word)
    return int(found.group(1)) if found else None


def grace_from_env():
    value = os.environ.get(GRACE_ENV)
    if value is None:
        return float(DEFAULT_GRACE_SECS)
    try:
        if "_" in value:  # Python's float() takes 1_0; Rust's parse does not
            raise ValueError
        grace = float(value.strip())
        if grace != grace or not 0 <= grace <= MAX_GRACE_SECS:
            raise ValueError
        return grace
    except ValueError:
        fail(BAD_GRACE.format(env=GRACE_ENV, max=MAX_GRACE_SECS, value=quote(text(value))))


def lease_from_env():
    value = os.environ.get(LEASE_ENV)
    if value is None or value.strip().lower() == LEASE_OFF:
        return None
    lease = whole(value)
    if lease == 0:
        return None
    if lease is not None and lease <= MAX_LEASE:
        return lease
    fail(BAD_LEASE.format(env=LEASE_ENV, max=MAX_LEASE, value=quote(text(value))))


def exact_from_env():
    value = os.environ.get(EXACT_ENV)
    word = (value or "").strip().lower()
    if word in SETTING_NO:
        return False
    if word in SETTING_YES:
        return True
    fail(BAD_EXACT.format(env=EXACT_ENV, value=quote(text(value))))


def secrets_from_env():
    """ASYNC_WRAPPER_SECRETS, checked as the native program checks it; the fallback writes
    every result to the job file whatever it says (it holds none in memory)."""
    value = os.environ.get(SECRETS_ENV)
    if value is not None and value.strip().lower() not in ("", SECRETS_MEMORY, SECRETS_DISK):
        fail(BAD_SECRETS.format(env=SECRETS_ENV, value=quote(text(value))))


def retain_from_env():
    """ASYNC_WRAPPER_RETAIN in seconds, None when unset: seconds, or a number with one of
    DURATION_UNITS, as the native program reads it."""
    value = os.environ.get(RETAIN_ENV)
    if value is None:
        return None
    found = re.match(r"([0-9.]*)(.*)$", value.strip(), re.S)
    try:
        age = float(found.group(1)) * dict(DURATION_UNITS)[found.group(2) or "s"]
    except (ValueError, KeyError):
        age = None
    if age is None or age != age or age > 1e12:
        fail(BAD_RETAIN.format(env=RETAIN_ENV, value=quote(text(value))))
    return age


def ansible_version_in(data):
    at = data.find(b"_ansible_version")
    if at < 0:
        return None
    found = re.match(br"[\"'\\:= ]{0,8}(\d+)\.(\d+)(?:\.(\d+))?", data[at + 16:at + 64])
    if not found:
        return None
    return tuple(int(n or 0) for n in found.groups())


def watchdog_of(version):
    for since in HALVING_SINCE:
        if since[:2] == version[:2]:
            return LIMIT_RULE_HALVING if version >= since else LIMIT_RULE_TRAILING
    return LIMIT_RULE_HALVING if version[:2] > HALVING_SINCE[-1][:2] else LIMIT_RULE_TRAILING


def deadline_of(limit, rule):
    """Seconds after the module's start at which the limit ends the job; None: no limit."""
    if not limit:
        return None
    if rule == LIMIT_RULE_EXACT:
        return limit
    steps = -(-limit // WATCHDOG_STEP) * WATCHDOG_STEP
    if rule == LIMIT_RULE_HALVING:
        return limit + 1 if limit <= WATCHDOG_STEP else steps + 1
    return WATCHDOG_STEP + steps


def seconds(value):
    # As Rust prints a float: 2 and 0.5, not 2.0.
    return ("%d" % value) if value == int(value) else repr(value)


# --- the async dir ------------------------------------------------------------------------------

class JobDir(object):
    def __init__(self, path):
        self.path = path

    def create(self):
        if not os.path.lexists(self.path):
            old = os.umask(0o077)
            try:
                os.makedirs(self.path, 0o700)
            except OSError as e:
                if e.errno != errno.EEXIST:
                    fail(CREATE_DIR.format(path=self.path, error=rust_io_error(e)))
            finally:
                os.umask(old)
        try:
            refusal = dir_refusal(self.path)
        except OSError as e:
            fail("%s: %s" % (self.path, rust_io_error(e)))
        if refusal:
            fail(refusal)

    def job_path(self, job_id):
        return os.path.join(self.path, job_id)

    def write(self, job_id, value, durable=True):
        """Replaces the job file whole: a temp file renamed over it, fsynced when durable.
        Returns the open descriptor when not durable, for sync() later."""
        path = self.job_path(job_id)
        data = (dumps(value) + "\n").encode("utf-8")
        for attempt in range(100):
            tmp = os.path.join(self.path, ".%s.%d%d.tmp" % (job_id, os.getpid(), attempt))
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                break
            except OSError as e:
                if e.errno != errno.EEXIST:
                    raise
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
            os.rename(tmp, path)
        except OSError:
            os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        if not durable:
            return fd
        os.close(fd)
        self.sync_dir()
        return None

    def sync(self, fd):
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.sync_dir()

    def sync_dir(self):
        try:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass

    def log(self, job_id, event):
        line = "%s %s\n" % (timestamp(time.time()), event.replace("\n", " "))
        try:
            fd = os.open(self.job_path(job_id) + ".log",
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
            try:
                os.write(fd, line.encode("utf-8", "replace"))
            finally:
                os.close(fd)
        except OSError:
            pass


# --- process identity (Linux): lets async_status and async_job tell a lost job -------------------

def process_stamp(pid):
    # /proc/./PID, not /proc/PID or /proc/self: qemu-user answers those two for its own
    # process with a made-up stat (7.2: most fields 0, the start time a tick off the
    # kernel's), and the native tools, which read the kernel's, would call the job lost.
    try:
        with open("/proc/./%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot_id = f.read().strip()
        return {"pid": pid, "start_time": int(fields[19]), "boot_id": boot_id}
    except (IOError, OSError, IndexError, ValueError):
        return None


def syslog_notice(msg):
    # <user.notice> to /dev/log without waiting, as the native program sends it.
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.setblocking(False)
            s.sendto(("<13>ansible-async_wrapper[%d]: %s" % (os.getpid(), msg)).encode("utf-8", "replace"),
                     "/dev/log")
        finally:
            s.close()
    except (socket.error, OSError):
        pass


# --- module output ------------------------------------------------------------------------------

def module_result(stdout, stderr, blank_is_junk):
    """The module's JSON result, or a string saying why there is none. Blank lines after the
    JSON are junk for ansible-core <= 2.20 (the legacy protocol), not for 2.21."""
    lines = output_text(stdout).splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("{")), None)
    if start is None:
        return NO_JSON_START
    lines = lines[start:]
    end = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].strip().endswith("}")), None)
    if end is None:
        return NO_JSON_END
    junk = lines[end + 1:]
    try:
        result = json.loads("\n".join(lines[:end + 1]))
    except ValueError as e:
        return NOT_VALID_JSON.format(error=e)
    if not isinstance(result, dict):
        return NOT_AN_OBJECT
    if junk and (blank_is_junk or any(line.strip() for line in junk)):
        warnings = result.pop("warnings", None)
        if warnings is None:
            warnings = []
        elif not isinstance(warnings, list):
            warnings = [warnings]
        result["warnings"] = warnings + [JUNK_WARNING + "\n".join(junk)]
    if stderr:
        result["stderr"] = output_text(stderr)
    return result


def job_state(result):
    """The state a finished job's result stands for, decided in the order the rules give."""
    for key, state in STATE_FLAGS:
        if result.get(key) is True:
            return state
    failed = result.get("failed")
    failed = failed is True or (type(failed) is int and failed == 1)
    if failed and result.get("msg") == TIMEOUT_MSG:
        return STATE_TIMED_OUT
    return STATE_FAILED if failed else STATE_FINISHED


# --- the supervisor -----------------------------------------------------------------------------

class Supervisor(object):
    def __init__(self, inv, job_id, jobs, grace, limit_rule, lease, started_at):
        self.inv, self.id, self.jobs, self.grace, self.started_at = inv, job_id, jobs, grace, started_at
        self.limit_rule, self.lease = limit_rule, lease
        self.deadline = deadline_of(inv.time_limit, limit_rule)
        self.pending = []
        self.pid = None

    def marker(self, module_stamp=None):
        marker = {"started": True, "finished": False, "ansible_job_id": self.id,
                  "started_at": round(self.started_at, 3), "time_limit": self.inv.time_limit,
                  "module": text(self.inv.module_path), "wrapper": "fallback",
                  "kill_grace": self.grace}
        if self.deadline is not None:
            marker["deadline"] = self.deadline
        if self.lease is not None:
            marker["lease"] = self.lease
        me = process_stamp(os.getpid())
        if me:
            marker["supervisor"] = me
        if module_stamp:
            marker["module_process"] = module_stamp
        return marker

    def event(self, event):
        self.jobs.log(self.id, event)
        syslog_notice("%s %s" % (self.id, event))

    def record_start(self):
        limits = ""
        if self.deadline is not None:
            limits = LOG_INVOKED_DEADLINE.format(deadline=self.deadline, rule=self.limit_rule)
        if self.lease is not None:
            limits += LOG_INVOKED_LEASE.format(lease=self.lease)
        self.jobs.log(self.id, LOG_INVOKED.format(protocol=self.inv.protocol, time_limit=self.inv.time_limit,
                                                  grace=seconds(self.grace), limits=limits,
                                                  module=self.inv.module_path))
        self.jobs.log(self.id, "fallback python=%s reason=%s" % (
            ".".join(str(v) for v in sys.version_info[:3]), REASON or "-"))
        return self.jobs.write(self.id, self.marker(), durable=False)

    def record_running(self, first_write):
        try:
            self.jobs.sync(first_write)
        except OSError:
            pass
        syslog_notice(SYSLOG_INVOKED.format(id=self.id, args=self.inv.display_args()))
        if self.pid is None:
            return
        syslog_notice("%s %s" % (self.id, LOG_STARTED.format(pid=self.pid)))
        stamp = process_stamp(self.pid)
        if stamp:
            try:
                self.jobs.write(self.id, self.marker(stamp))
            except OSError:
                pass

    def retain_jobs(self):
        """ASYNC_WRAPPER_RETAIN: removes the job files (and logs) of finished jobs older than
        that, as `async_job gc` does: never a running one (a file with RUNNING_KEY)."""
        if getattr(self, "retain", None) is None:
            return
        removed, now = 0, time.time()
        for name in sorted(os.listdir(self.jobs.path)):
            path = self.jobs.job_path(name)
            try:
                if job_id_error(name) or name.endswith(".log") or now - os.lstat(path).st_mtime < self.retain:
                    continue
                with os.fdopen(os.open(path, os.O_RDONLY | O_NOFOLLOW), "rb") as f:
                    data = f.read()
                try:
                    job = json.loads(data.decode("utf-8", "replace") or "{}")
                except ValueError:
                    job = None
                if isinstance(job, dict) and RUNNING_KEY in job:
                    continue
                os.unlink(path)
            except OSError:
                continue
            removed += 1
            try:
                os.unlink(path + ".log")
            except OSError:
                pass
        self.jobs.log(self.id, LOG_RETAIN.format(age=int(self.retain), removed=removed))

    def failure(self, msg, data="", stderr=""):
        return {"failed": True, "cmd": self.inv.display_command(), "msg": msg,
                "ansible_job_id": self.id, "data": data, "stderr": stderr}

    def on_signal(self, signum, frame):
        if signum != signal.SIGCHLD:
            self.pending.append(signum)

    def start_module(self):
        """Starts the module; a dict is a finished job's failed result (it never ran)."""
        wake_r, wake_w = os.pipe()
        for fd in (wake_r, wake_w):
            set_cloexec(fd)
            set_nonblocking(fd)
        self.wake = wake_r
        signal.set_wakeup_fd(wake_w)
        for signum in STOP_SIGNALS + (signal.SIGCHLD,):
            signal.signal(signum, self.on_signal)
        set_subreaper()
        try:
            import tempfile
            capture = [tempfile.TemporaryFile(dir=self.jobs.path) for _ in range(2)]
        except (IOError, OSError) as e:
            return self.failure(NOT_CAPTURED.format(error=rust_io_error(e)))
        self.capture = capture
        try:
            argv = self.inv.argv()
        except (IOError, OSError) as e:
            return self.failure(OS_ERROR.format(errno=e.errno, error=strerror(e)) if e.errno else str(e))
        if not argv:
            return self.failure(EMPTY_COMMAND)
        err_r, err_w = os.pipe()
        set_cloexec(err_r)
        set_cloexec(err_w)
        pid = os.fork()
        if pid == 0:
            try:
                os.setpgid(0, 0)
                # Every disposition back to the default: a wrapper started with signals
                # ignored (nohup, a CI runner's background shell) must not pass that on.
                for signum in range(1, getattr(signal, "NSIG", 65)):
                    if signum not in (signal.SIGKILL, signal.SIGSTOP):
                        try:
                            signal.signal(signum, signal.SIG_DFL)
                        except (ValueError, OSError, RuntimeError):
                            pass
                if hasattr(signal, "pthread_sigmask"):
                    signal.pthread_sigmask(signal.SIG_SETMASK, [])
                null = os.open("/dev/null", os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(capture[0].fileno(), 1)
                os.dup2(capture[1].fileno(), 2)
                close_fds_except(err_w)
                os.execvp(argv[0], argv)
            except OSError as e:
                os.write(err_w, str(e.errno or 0).encode())
            os._exit(127)
        os.close(err_w)
        failed = read_to_end(err_r)
        os.close(err_r)
        if failed:
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass
            code = int(failed)
            return self.failure(NOT_RUN.format(errno=code, error=os.strerror(code), program=argv[0]))
        self.pid = pid
        self.module_started = clock()
        self.jobs.log(self.id, LOG_STARTED.format(pid=pid))
        return None

    def reap(self):
        """Reaps every exited child (the module and orphans reparented to us); the module's
        status once it is among them."""
        status = None
        while True:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except OSError:
                return status
            if pid == 0:
                return status
            if pid == self.pid:
                status = st

    def last_renewal(self):
        try:
            return os.lstat(self.jobs.job_path(self.id)).st_mtime
        except OSError:
            return None

    def lease_run_out(self):
        """Takes in a renewal (a status call moved the job file's time) since the last look;
        whether the lease has run out."""
        seen = self.last_renewal()
        if seen is not None and seen != self.lease_seen:
            self.lease_seen = seen
            renewed = clock() - max(0.0, time.time() - seen)
            if renewed > self.renewed:
                self.renewed, self.last_call = renewed, seen
        return clock() >= self.renewed + self.lease

    def lease_expired(self):
        last = timestamp(self.last_call) if self.last_call is not None else None
        self.event(LOG_LEASE_EXPIRED.format(lease=self.lease, last=last or "none"))
        self.end()
        when = LAST_CALL_AT.format(at=last) if last else NO_CALL_SINCE_START
        return {"failed": True, "terminated": True, "lease_expired": True, "child_pid": self.pid,
                "ansible_job_id": self.id, "lease": self.lease, "last_call": last,
                "msg": LEASE_EXPIRED.format(lease=self.lease, env=LEASE_ENV, when=when)}

    def supervise(self):
        deadline = None if self.deadline is None else self.module_started + self.deadline
        # The supervisor's own writes of the job file are not calls.
        self.renewed, self.lease_seen, self.last_call = self.module_started, self.last_renewal(), None
        while True:
            status = self.reap()
            if status is not None:
                return self.exited(status)
            if self.pending:
                return self.stopped(self.pending[0])
            now = clock()
            if deadline is not None and deadline <= now:
                self.event(LOG_TIMEOUT.format(time_limit=self.inv.time_limit, rule=self.limit_rule))
                self.end()
                return {"msg": TIMEOUT_MSG, "failed": True, "child_pid": self.pid, "time_limit": self.inv.time_limit,
                        "elapsed": round(clock() - self.module_started, 1)}
            wake = [] if deadline is None else [deadline]
            if self.lease is not None:
                if self.renewed + self.lease <= now and self.lease_run_out():
                    return self.lease_expired()
                wake.append(self.renewed + self.lease)
            left = max(0.0, min(wake) - now) if wake else None
            try:
                select.select([self.wake], [], [], left)
            except (select.error, OSError):
                pass
            try:
                while os.read(self.wake, 512):
                    pass
            except OSError:
                pass

    def exited(self, status):
        if os.WIFSIGNALED(status):
            self.event(LOG_KILLED.format(signal=signal_name(os.WTERMSIG(status))))
        else:
            self.event(LOG_EXITED.format(code=os.WEXITSTATUS(status)))
        try:
            out, err = [read_all(f) for f in self.capture]
        except (IOError, OSError) as e:
            return self.failure(NOT_READ.format(error=rust_io_error(e)))
        result = module_result(out, err, self.inv.protocol == "legacy")
        if isinstance(result, dict):
            return result
        msg = NO_JSON_RESULT.format(why=result)
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            msg += NO_JSON_KILLED.format(number=sig, signal=signal_name(sig))
        elif os.WEXITSTATUS(status):
            msg += NO_JSON_EXITED.format(code=os.WEXITSTATUS(status))
        return self.failure(msg, output_text(out), output_text(err))

    def stopped(self, signum):
        if signum == signal.SIGUSR1:
            self.event(LOG_TERMINATE)
            msg = TERMINATED_ON_REQUEST
        else:
            self.event(LOG_STOPPED.format(signal=signal_name(signum)))
            msg = STOPPED_BY_SIGNAL.format(signal=signal_name(signum))
        self.end()
        return {"failed": True, "terminated": True, "msg": msg, "child_pid": self.pid, "ansible_job_id": self.id}

    def end(self):
        """SIGTERM to the module's group, up to the grace period for it to go, then SIGKILL."""
        def group_gone():
            try:
                os.killpg(self.pid, 0)
                return False
            except OSError as e:
                return e.errno == errno.ESRCH

        try:
            os.killpg(self.pid, signal.SIGTERM)
        except OSError:
            pass
        reaped = False
        deadline = clock() + self.grace
        while True:
            reaped = self.reap() is not None or reaped
            if reaped and group_gone():
                self.event(LOG_ENDED.format(signal="SIGTERM"))
                return
            if clock() >= deadline:
                break
            time.sleep(0.01)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass
        if not reaped:
            try:
                os.waitpid(self.pid, 0)
            except OSError:
                pass
        deadline = clock() + 1
        while not group_gone() and clock() < deadline:
            self.reap()
            time.sleep(0.01)
        self.event(LOG_ENDED.format(signal="SIGKILL"))

    def write_result(self, result):
        """Removes ansible's tmp dir when that is ours to do, then writes the result. The
        log comes first: once the result is there, ansible may delete the job and its log."""
        tmp = self.inv.tmp_dir_to_remove()
        if tmp and os.path.isdir(tmp) and not os.path.islink(tmp):
            import shutil
            try:
                shutil.rmtree(tmp)
                self.event(LOG_TMP_REMOVED.format(dir=tmp))
            except OSError:
                pass
        if isinstance(result, dict) and result.get("_ansible_new_secrets"):
            self.jobs.log(self.id, LOG_SECRETS_ON_DISK.format(reason="new_secrets", why=SECRETS_ON_DISK_FALLBACK))
        self.event(LOG_RESULT.format(state=job_state(result)))
        try:
            self.jobs.write(self.id, result)
        except (OSError, ValueError, TypeError) as e:
            # As the native program words it: the job file, then the OS error.
            error = e
            if isinstance(e, OSError):
                error = "%s: %s" % (self.jobs.job_path(self.id), rust_io_error(e))
            self.event(LOG_NOT_WRITTEN.format(error=error))
            try:
                self.jobs.write(self.id, {"failed": True, "ansible_job_id": self.id,
                                          "msg": NOT_WRITTEN.format(error=error)})
            except OSError:
                pass


def read_to_end(fd):
    """What a pipe carries until its writers close it (Python 2 needs EINTR retried); a read
    error ends it with what came so far."""
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError as e:
            if e.errno == errno.EINTR:
                continue
            return data
        if not chunk:
            return data
        data += chunk


def read_all(f):
    f.seek(0)
    return f.read()


def set_cloexec(fd):
    import fcntl
    fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.fcntl(fd, fcntl.F_GETFD) | fcntl.FD_CLOEXEC)


def set_nonblocking(fd):
    import fcntl
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


def close_fds_except(*keep):
    """Closes every descriptor but stdio and `keep`: the module inherits nothing from the
    connection that started the job."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except (OSError, ValueError):
        fds = range(3, 1024)
    for fd in fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def set_subreaper():
    # Linux: orphans of the module are reparented to us and reaped. Optional elsewhere.
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass


def to_dev_null():
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


# --- main ---------------------------------------------------------------------------------------

def main(args):
    if sys.version_info < (2, 7):
        fail("the async_wrapper fallback needs Python 2.7 or later, this is %s" % sys.version.split()[0])
    inv = Invocation(args)
    job_id = "%s.%d" % (inv.jid, os.getpid())
    invalid = job_id_error(job_id)
    if invalid:
        fail(invalid)
    grace = grace_from_env()
    limit_rule = "exact" if exact_from_env() or not inv.time_limit else inv.stock_watchdog()
    lease = lease_from_env()
    secrets_from_env()
    retain = retain_from_env()
    jobs = JobDir(expand_dir(os.environ.get(ASYNC_DIR_ENV) or DEFAULT_ASYNC_DIR))
    jobs.create()
    started_at = time.time()
    results_file = jobs.job_path(job_id)
    sup = Supervisor(inv, job_id, jobs, grace, limit_rule, lease, started_at)
    sup.retain = retain

    ready_r, ready_w = os.pipe()
    set_cloexec(ready_r)
    set_cloexec(ready_w)
    sys.stdout.flush()
    child = os.fork()
    if child:
        os.close(ready_w)
        answer = read_to_end(ready_r)
        try:
            os.waitpid(child, 0)
        except OSError:
            pass
        if answer == STARTED:
            reply({"failed": False, "started": True, "finished": False, "ansible_job_id": job_id,
                   "results_file": results_file, "_ansible_suppress_tmpdir_delete": not inv.preserve_tmp}, 0)
        msg = text(answer) if answer else NOT_STARTED
        fail(msg, ansible_job_id=job_id)

    # The first child: leaves ansible's session and forks the supervisor.
    os.close(ready_r)
    try:
        os.setsid()
    except OSError:
        pass
    try:
        if os.fork():
            os._exit(0)
    except OSError as e:
        os.write(ready_w, FORK_FAILED.format(n=2, error=e).encode("utf-8"))
        os._exit(1)
    try:
        supervise(sup, ready_w, results_file)
    except BaseException as e:
        # Up the pipe if ansible still waits for it; the job file has the rest.
        try:
            os.write(ready_w, ("the async_wrapper fallback failed: %s: %s" % (type(e).__name__, e)).encode("utf-8"))
        except OSError:
            pass
    os._exit(0)


def supervise(sup, ready_w, results_file):
    """The supervisor's life: detach from ansible's stdio, write the job file, start the
    module, answer ansible, wait, write the result."""
    # The supervisor must not hold ansible's stdout open, or ansible would wait for it.
    try:
        to_dev_null()
    except OSError as e:
        os.write(ready_w, NO_DEV_NULL.format(error=e).encode("utf-8"))
        os._exit(1)
    close_fds_except(ready_w)
    os.umask(0o022)
    try:
        first_write = sup.record_start()
    except (OSError, IOError) as e:
        error = "%s: %s" % (results_file, rust_io_error(e))
        os.write(ready_w, JOB_FILE_NOT_WRITTEN.format(error=error).encode("utf-8"))
        os._exit(1)
    failed = sup.start_module()
    if failed is None:
        os.write(ready_w, STARTED)
        os.close(ready_w)
        sup.record_running(first_write)
        sup.retain_jobs()
        sup.write_result(sup.supervise())
    else:
        sup.write_result(failed)
        os.write(ready_w, STARTED)
        os.close(ready_w)
        sup.record_running(first_write)

if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except SystemExit:
        raise
    except BaseException as e:
        # Never a traceback to ansible: one failed JSON result naming what went wrong.
        fail("the async_wrapper fallback failed: %s: %s" % (type(e).__name__, e))
# --- end of async_wrapper.py ---
