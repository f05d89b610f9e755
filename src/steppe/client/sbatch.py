"""sbatch's options as a table, so a ``#SBATCH`` line can be read whole, whatever it asks for.

Steppe reads ``#SBATCH`` lines with the meaning of ``#STEPPE`` lines (``client/script.py``): the
options Steppe supports are ``script.OPTIONS``; every other sbatch option is one it does not
support yet, which the script reader lists in a warning instead of refusing the script. To skip
such an option correctly it must know whether the option takes a value: ``--mem 32G`` is one
option with its value, ``--hold`` stands alone, and ``--exclusive`` takes a value only after
``=`` (getopt's optional argument). ``arity`` says which, from sbatch's manual (Slurm 23.11);
an option that is not sbatch's at all has none, and the reader refuses it as sbatch does.

>>> arity("--mem"), arity("-H"), arity("--exclusive"), arity("--frobnicate")
('value', 'flag', 'optional', None)
>>> long_name("-c"), long_name("--mem")
('--cpus-per-task', '--mem')
"""

from __future__ import annotations

from typing import Literal

Arity = Literal["value", "flag", "optional"]

SHORT = {
    "-A": "--account", "-a": "--array", "-B": "--extra-node-info", "-b": "--begin", "-C": "--constraint",
    "-c": "--cpus-per-task", "-D": "--chdir", "-d": "--dependency", "-e": "--error", "-F": "--nodefile",
    "-G": "--gpus", "-H": "--hold", "-h": "--help", "-i": "--input", "-J": "--job-name", "-k": "--no-kill",
    "-L": "--licenses", "-M": "--clusters", "-m": "--distribution", "-N": "--nodes", "-n": "--ntasks",
    "-O": "--overcommit", "-o": "--output", "-p": "--partition", "-Q": "--quiet", "-q": "--qos",
    "-S": "--core-spec", "-s": "--oversubscribe", "-t": "--time", "-V": "--version", "-v": "--verbose",
    "-W": "--wait", "-w": "--nodelist", "-x": "--exclude",
}  # fmt: skip
"""sbatch's one-letter options and their long names."""

_VALUE = frozenset({
    "--account", "--acctg-freq", "--array", "--batch", "--bb", "--bbf", "--begin", "--chdir",
    "--cluster-constraint", "--clusters", "--comment", "--constraint", "--container", "--container-id",
    "--core-spec", "--cores-per-socket", "--cpu-freq", "--cpus-per-gpu", "--cpus-per-task", "--deadline",
    "--delay-boot", "--dependency", "--distribution", "--error", "--exclude", "--export", "--export-file",
    "--extra", "--extra-node-info", "--gid", "--gpu-bind", "--gpu-freq", "--gpus", "--gpus-per-node",
    "--gpus-per-socket", "--gpus-per-task", "--gres", "--gres-flags", "--hint", "--input", "--job-name",
    "--kill-on-invalid-dep", "--licenses", "--mail-type", "--mail-user", "--mcs-label", "--mem", "--mem-bind",
    "--mem-per-cpu", "--mem-per-gpu", "--mincpus", "--network", "--nodefile", "--nodelist", "--nodes",
    "--ntasks", "--ntasks-per-core", "--ntasks-per-gpu", "--ntasks-per-node", "--ntasks-per-socket",
    "--open-mode", "--output", "--partition", "--power", "--prefer", "--priority", "--profile", "--qos",
    "--reservation", "--resv-ports", "--segment", "--signal", "--sockets-per-node", "--switches",
    "--thread-spec", "--threads-per-core", "--time", "--time-min", "--tmp", "--tres-bind", "--tres-per-task",
    "--uid", "--wait-all-nodes", "--wckey", "--wrap",
})  # fmt: skip
_FLAG = frozenset({
    "--contiguous", "--help", "--hold", "--ignore-pbs", "--no-requeue", "--overcommit", "--oversubscribe",
    "--parsable", "--quiet", "--reboot", "--requeue", "--spread-job", "--test-only", "--usage",
    "--use-min-nodes", "--verbose", "--version", "--wait",
})  # fmt: skip
_OPTIONAL = frozenset({"--exclusive", "--get-user-env", "--nice", "--no-kill", "--propagate"})
_SHORT_FLAGS = frozenset({"-H", "-h", "-k", "-O", "-Q", "-s", "-V", "-v", "-W"})


def long_name(flag: str) -> str:
    """The long name of a one-letter sbatch option (``-c`` -> ``--cpus-per-task``); others unchanged."""
    return SHORT.get(flag, flag)


def arity(flag: str) -> Arity | None:
    """Whether sbatch's option ``flag`` takes a value, none, or one only after ``=``; None: not sbatch's."""
    if flag in _SHORT_FLAGS:
        return "flag"
    name = long_name(flag)
    if name in _VALUE:
        return "value"
    if name in _FLAG:
        return "flag"
    if name in _OPTIONAL:
        return "optional"
    return None
