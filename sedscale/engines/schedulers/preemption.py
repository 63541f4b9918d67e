"""The batch-script fragment that makes a block stop its workers when the scheduler warns it.

Mechanics (issue 13): ``--signal=B:SIG@T`` reaches only the batch shell, and a shell runs its
trap only after a *foreground* command returns — so the workers run in the background and the
shell ``wait``s. On the warning (or SIGTERM) the trap sends SIGTERM to the job's whole process
group (srun forwards it to its steps): Parsl worker pools exit, Dask workers close gracefully.
A partition in flight is abandoned, never half-committed (commits are atomic), and the driver
runs it again on another block (or ``resume`` does).
"""

from __future__ import annotations


def preemptible(body: str, warning_signal: str) -> str:
    """``body`` (the shell lines that start the workers) wrapped so ``warning_signal`` and TERM
    stop them cleanly; the script's exit status stays the workers'."""
    return (
        "# sedscale: workers run in the background so this shell's trap runs as soon as the\n"
        f"# scheduler sends {warning_signal} (its walltime warning) or TERM; the trap stops them all.\n"
        "sedscale_stop() {\n"
        f"    trap '' TERM {warning_signal}\n"
        '    echo "sedscale: $1 received: stopping the workers"\n'
        "    kill -TERM 0\n"
        "}\n"
        "trap 'sedscale_stop TERM' TERM\n"
        f"trap 'sedscale_stop {warning_signal}' {warning_signal}\n"
        "sedscale_workers() {\n"
        f"{body.rstrip()}\n"
        "}\n"
        "sedscale_workers &\n"
        "SEDSCALE_WORKERS=$!\n"
        "while true; do\n"
        "    wait $SEDSCALE_WORKERS && SEDSCALE_RC=0 || SEDSCALE_RC=$?\n"
        "    kill -0 $SEDSCALE_WORKERS 2>/dev/null || break\n"
        "done\n"
        "exit $SEDSCALE_RC\n"
    )
