# The action of ansible-async-rs's async_job module (library/async_job): it passes the play's
# async dir to the module, as ansible-core's own async_status action does for async_status, so
# that `async_job` finds the jobs the play's async tasks started (`ansible_async_dir`, or the
# shell's `async_dir` option; default ~/.ansible_async, its `~` expanded on the host by the
# program, by the rule ansible's `echo ~user` follows for async_status). An `async_dir` given
# to the task wins.
#
# Use it with ANSIBLE_ACTION_PLUGINS=/path/to/action_plugins, `action_plugins = ...` in
# ansible.cfg, or an action_plugins/ folder beside the playbook. ansible-core 2.14 to 2.22.
#
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import annotations

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # unused: the module makes no temp files of its own

        args = dict(self._task.args)
        if not args.get("async_dir"):
            async_dir = self.get_shell_option("async_dir", default="~/.ansible_async")
            # The program (and library/async_job, to find it) expands `~` by the rule ansible's
            # `echo ~user` follows: no `echo ~` of ansible's, one SSH command less. On a local
            # connection, where it costs no round trip and goes by $HOME, ansible's is kept.
            connection = self._connection
            if getattr(connection, "_remote_is_local", False) or getattr(connection, "transport", "") == "local":
                async_dir = self._remote_expand_user(async_dir)
            args["async_dir"] = async_dir
        result.update(self._execute_module(module_name="ansible.legacy.async_job", module_args=args,
                                           task_vars=task_vars))
        return result
