"""The task-type catalog: every type a task may have, checked when a task is created."""
