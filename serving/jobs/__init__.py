"""Training jobs for a server full of students: background processes, a server-wide limit, a queue, runs on disk.

Each job trains with ``lab.train.train`` in its own process, watched by a thread of the server, into
``<root>/<job id>/`` (checkpoints, history.jsonl, samples/): the pages' redraws and the training never wait for
each other on the GIL. At most ``max_running`` jobs train at once; the rest wait, in a fair order between
browsers (a run the server was training when it went away first, then the owner with the fewest runs going, then
queue order, a run counting from no earlier than its owner's last start: a new or made-up owner never jumps ahead of
runs queued before it), at most ``max_queued`` of them. A browser (an owner) and a session each have at
most ``max_per_owner`` runs queued or running. A run trains at most ``max_minutes`` at a stretch (then it stops with a
checkpoint, resumable) and starts only with ``min_free_mb`` free on the disk.

Jobs belong to an owner (a browser's secret id), survive the page that started them, can be stopped and resumed by
their owner, by the lecturer, or by anyone once the lecturer shares the run's controls (``Caller``; ``NotAllowed``
otherwise); the lecturer also reorders and clears the queue. A failed run keeps its error. A new manager on the same
folder (a restarted server) lists the runs found there, each folder read in its own guard (a damaged one is listed as
damaged, with what to do, and nothing else is affected): finished ones done, interrupted ones queued again first,
resuming from their last checkpoint. Every status and error file is written atomically and fsynced; a write that
fails fails its run with a message and frees its slot. One server per runs folder (``RunsFolderBusy`` for a second).
``cleanup`` removes finished runs whose owner has not been seen for a while.
No Streamlit here: the training page only reads and commands.

The parts: ``manager`` (the queue and its fair order, starting, stopping, resuming), ``folder`` (the runs folder on
disk: its lock, its records, reading it back), ``permissions`` (who may do what), ``child`` (a run's training
process), ``forkserver`` (where it is forked from, torch already imported), ``job`` (a run as the server knows it).
"""

from serving.jobs.child import ChildFailed, ended
from serving.jobs.folder import RunsFolderBusy
from serving.jobs.job import STATES, Job
from serving.jobs.manager import JobManager
from serving.jobs.permissions import OWNER_ID, RUN_ID, SERVER, Caller, NotAllowed, RunLimit

__all__ = [
    "OWNER_ID",
    "RUN_ID",
    "SERVER",
    "STATES",
    "Caller",
    "ChildFailed",
    "Job",
    "JobManager",
    "NotAllowed",
    "RunLimit",
    "RunsFolderBusy",
    "ended",
]
