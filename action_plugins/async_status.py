# The action of async_status for ansible-async-rs: ansible-core's own action, less its `echo ~`.
#
# ansible's `poll:` loop looks its status action up as `ansible.legacy.async_status` (so does a
# task that says `async_status:`; `ansible.builtin.async_status:` always gets ansible's own),
# and this file, in a role's `action_plugins/` or the configured action plugin path, is found
# there first. It is ansible-core's own action (loaded from ansible's file, whichever version
# runs), with one change where this project's library/async_status answers: the async dir goes
# to the host as configured (`~/.ansible_async`, `ansible_async_dir`, the shell's `async_dir`)
# and the program expands its `~` itself, by the rule ansible's `echo ~user` follows (the passwd
# home). ansible's own action runs that `echo` on the host before every status call and every
# cleanup: over SSH, a second command each time. The answers are ansible's own, key for key:
# the program names the job file, with the dir expanded, in `results_file` (`erased` for a
# cleanup), as ansible's action does from its own expansion.
#
# In the `poll:` loop (TaskExecutor._poll_async_result, the caller of this action's `run`: its
# frame gives the task's `poll` and the loop's `time_left`), a status call on a running job
# waits for the job's end, up to `poll` seconds, and answers the moment it ends (the program
# watches the job file with inotify). The loop sleeps `poll` seconds before each call; this
# file, when it is imported (by the worker's plugin loader, before the loop's first sleep),
# puts a stand-in for the `time` module into ansible's task_executor whose `sleep`, only there
# (the loop's own sleep before a call of this action where our program answers), sleeps what
# the calls have not spent waiting: none before the first call, which comes right after the
# launch; before each other call, the rest of the `poll` seconds since the previous call
# started (none after a call that waited them all). So the calls come one per `poll` seconds,
# as stock's, and the loop's budget (`async` counted down by `poll` per call) is unchanged,
# but a job is seen to end the moment it ends: a task ends when its module ends. The loop's
# last call never waits and comes when stock's would (`poll` seconds after the previous
# call's wait, or its interval, is over), so a job still running at the loop's limit is
# reported as stock reports it. Every other sleep (an until-loop's `delay`, anything not this
# loop's) is the real one. A task of yours waits only when it asks, with `wait: SECONDS`.
#
# A cancelled play stops polling: before each call of the loop, the worker checks that the
# ansible-playbook process that forked it is still its parent. From ansible-core 2.19 on a
# worker runs in a session of its own and outlives a SIGKILL to ansible-playbook's process
# group (ansible-runner's cancel, AWX); it would poll on, renewing the job's lease, until the
# task's `async` seconds are over. Here it exits instead, and the lease ends the job.
#
# Where our program is not the one answering (the module found as `ansible.legacy.async_status`
# is not this project's, a shell that is not POSIX sh such as PowerShell, anything
# unexpected), this is ansible's own action, unchanged. On a local connection, where its
# `echo ~` costs no round trip, its expansion of the async dir is kept.
#
# ansible-core 2.14 to 2.22. GNU General Public License v3.0+ (see LICENSE)

from __future__ import annotations

import importlib.util
import math
import multiprocessing
import os
import sys
import time

import ansible.plugins.action as ansible_actions


def _ansible_own_action():
    """ansible-core's own async_status action class. Loaded from its file under a name of its
    own: ansible's plugin loader imports this file as `ansible.plugins.action.async_status`,
    so importing that name would import this file again."""
    path = os.path.join(os.path.dirname(ansible_actions.__file__), "async_status.py")
    spec = importlib.util.spec_from_file_location("ansible_async_rs_ansible_async_status", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ActionModule


AnsibleAsyncStatus = _ansible_own_action()

# How this project's library/async_status is known: a `#!/bin/sh` script that runs the program
# with `async_status --args-json` and (since the release that has this plugin) finds the
# program's cached copy for an async dir given as `~/...`.
OUR_STATUS_SCRIPT = (b"#!/bin/sh\n", (b"async_status --args-json", b"case $d in [~$]*/*)"))


def is_our_status_script(head: bytes) -> bool:
    """Whether a module file that starts with `head` is this project's library/async_status."""
    start, marks = OUR_STATUS_SCRIPT
    return head.startswith(start) and all(mark in head for mark in marks)


def poll_loop(frame, action):
    """The `poll:` loop calling `action`, from the frame that called its `run`: (poll,
    time_left) as numbers, else None (a task of the user's, a cleanup, anything unexpected)."""
    try:
        if frame.f_code.co_name != "_poll_async_result" or frame.f_locals.get("async_handler") is not action:
            return None
        poll = frame.f_locals["self"]._task.poll
        time_left = frame.f_locals["time_left"]
        if isinstance(poll, bool) or isinstance(time_left, bool):
            return None
        poll, time_left = float(poll), float(time_left)
        if not (math.isfinite(poll) and math.isfinite(time_left) and poll > 0):
            return None
        return poll, time_left
    except Exception:
        return None


def last_call(poll: float, time_left: float) -> bool:
    """Whether the `poll:` loop's coming call is its last: the loop counts the task's `async`
    seconds down by `poll` per call and stops at 0."""
    return time_left - poll <= 0


def poll_pause(frame, seconds):
    """How long a `time.sleep(seconds)` called from `frame` sleeps: our handler's pause when
    it is the `poll:` loop's sleep before a call of a handler of this action (its
    `_async_rs_poll_pause`), else `seconds`; anything unexpected: `seconds`."""
    try:
        if frame.f_code.co_name != "_poll_async_result":
            return seconds
        handler = frame.f_locals.get("async_handler")
        pause = getattr(handler, "_async_rs_poll_pause", None)
        loop = poll_loop(frame, handler) if pause is not None else None
        if loop is None or isinstance(seconds, bool) or float(seconds) != loop[0]:
            return seconds
        chosen = pause(*loop)
        if chosen is None:
            return seconds
        chosen = float(chosen)
        return chosen if math.isfinite(chosen) and chosen >= 0 else seconds
    except Exception:
        return seconds


class PollClock:
    """The `time` of ansible's task_executor module: the module it replaced, attribute for
    attribute, but `sleep`, whose pause in the `poll:` loop of this action is `poll_pause`'s."""

    _async_rs_poll_clock = True

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def sleep(self, seconds):
        return self._real.sleep(poll_pause(sys._getframe(1), seconds))


def install_poll_clock() -> None:
    """Puts a PollClock in place of the `time` module of ansible's task_executor, once (this
    file can be imported more than once); anything unexpected: nothing changes."""
    try:
        import ansible.executor.task_executor as task_executor

        current = getattr(task_executor, "time", None)
        if current is None or getattr(current, "_async_rs_poll_clock", False) or not callable(
                getattr(current, "sleep", None)):
            return
        task_executor.time = PollClock(current)
    except Exception:
        return


def playbook_gone() -> bool:
    """Whether the ansible-playbook process that forked this worker is gone: it is no longer
    this process's parent (the worker was re-parented). Only where ansible forks its workers
    (its multiprocessing context, `fork` in 2.14 to 2.22); anything unexpected: not gone."""
    try:
        from ansible.utils.multiprocessing import context

        if context.get_start_method() != "fork":
            return False
        parent = multiprocessing.parent_process()
        return parent is not None and parent.pid != os.getppid()
    except Exception:
        return False


def wait_seconds(value):
    """A task's `wait:` as seconds (a number, or its text), or None when it is not one."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


class ActionModule(AnsibleAsyncStatus):
    _ours = False
    _unexpanded = False
    _wait = None

    def run(self, tmp=None, task_vars=None):
        self._ours = self._answers()
        # A local connection: ansible's `echo ~` costs no round trip, and it expands `~` by the
        # controller's $HOME there; its expansion is kept.
        connection = self._connection
        self._unexpanded = self._ours and not (getattr(connection, "_remote_is_local", False)
                                               or getattr(connection, "transport", "") == "local")
        self._wait = None
        if self._ours:
            loop = poll_loop(sys._getframe(1), self)
            if loop is not None:
                # When this call starts: the loop's next pause is counted from here.
                self._poll_call_started = time.monotonic()
                if playbook_gone():
                    # Nobody reads this worker's results any more: stop polling, and let the
                    # job's lease (if it has one) end it.
                    os._exit(1)
                poll, time_left = loop
                # Not on the loop's last call (it counts `async` down by `poll` per call). The
                # wait ends at the job's deadline (less the program's margin): the loop's last
                # call comes at stock's moment whatever this wait took (see `poll_pause`).
                if not last_call(poll, time_left):
                    self._wait = {"_wait": poll}
            if loop is None and "wait" in self._task.args:
                # Taken out of the task's arguments for this call only (an until-loop runs the
                # same action with the same task again).
                args = self._task.args
                seconds = wait_seconds(args["wait"])
                if seconds is None:
                    return {"failed": True, "msg": "wait must be a number of seconds, got: %r" % (args["wait"],)}
                self._wait = {"_wait": seconds}
                self._task.args = {k: v for k, v in args.items() if k != "wait"}
                try:
                    return super().run(tmp, task_vars)
                finally:
                    self._task.args = args
        return super().run(tmp, task_vars)

    def _get_async_dir(self):
        if self._unexpanded:
            return self.get_shell_option("async_dir", default="~/.ansible_async")
        return super()._get_async_dir()

    def _execute_module(self, module_name=None, module_args=None, *args, **kwargs):
        if self._wait and module_name == "ansible.legacy.async_status" and module_args is not None \
                and module_args.get("mode", "status") == "status":
            module_args = dict(module_args, **self._wait)
        return super()._execute_module(module_name, module_args, *args, **kwargs)

    _answered = None
    _poll_call_started = None

    def _answers(self) -> bool:
        """`_our_program_answers()`, found once per handler (the `poll:` loop's pauses ask
        before its first call)."""
        if self._answered is None:
            self._answered = self._our_program_answers()
        return self._answered

    def _async_rs_poll_pause(self, poll, time_left):
        """How long the `poll:` loop (which calls this handler) pauses before its next call,
        the loop's `time.sleep(poll)` (see `poll_pause`); None: the whole `poll` (stock's)."""
        if not self._answers():
            return None
        started = self._poll_call_started
        now = time.monotonic()
        if last_call(poll, time_left):
            # At stock's moment: `poll` after the previous call's interval (its wait, or the
            # `poll` seconds it stands for) is over; the whole `poll` when it is the only call.
            if started is None:
                return None
            return max(poll, started + 2 * poll - now)
        # The first call at once (it waits for the job's end); each other call `poll` seconds
        # after the previous one started, at once when that one waited its whole `poll`.
        if started is None:
            return 0.0
        return max(0.0, started + poll - now)

    def _our_program_answers(self) -> bool:
        """Whether the module ansible will run for this call is this project's, on a host whose
        shell is POSIX sh; any doubt is a no."""
        try:
            connection = self._connection
            shell = connection._shell
            if getattr(shell, "SHELL_FAMILY", None) != "sh" or getattr(shell, "_IS_WINDOWS", False):
                return False
            kinds = tuple(connection.module_implementation_preferences)
            if ".ps1" in kinds:
                return False
            # The module as ansible's _configure_module finds it.
            for kind in kinds:
                found = self._shared_loader_obj.module_loader.find_plugin_with_context(
                    "ansible.legacy.async_status", kind, collection_list=self._task.collections)
                path = found.plugin_resolved_path if found.resolved else None
                if path:
                    break
            else:
                return False
            with open(path, "rb") as module:
                return is_our_status_script(module.read(8192))
        except Exception:
            return False


install_poll_clock()
