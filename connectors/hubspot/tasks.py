"""Tasks for deal owners: one task per alert, associated with the deal, found again by subject.

The alert's delivery key ends the task's ``hs_task_subject``; before creating, one CRM search
on tasks for that exact subject tells whether an earlier try already created it (a crash
between the create and the outbox's record of it). The retry comes minutes later (the
outbox's claim), well after HubSpot's search index has the first task.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from connectors.base import CrmTask
from connectors.hubspot.client import HubSpotClient

__all__ = ["PRIORITY", "create_task", "task_subject"]

PRIORITY = {"High": "HIGH", "Normal": "MEDIUM", "Low": "LOW"}
"""The task priorities in HubSpot's values."""


def task_subject(task: CrmTask) -> str:
    """``hs_task_subject``: the task's subject, then its key in brackets."""
    return f"{task.subject} [{task.key}]"


def create_task(client: HubSpotClient, task: CrmTask) -> str:
    """The id of the task with ``task.key``: the existing one, else a new one on the deal."""
    subject = task_subject(task)
    found = client.search(
        "tasks",
        filter_groups=[
            {"filters": [{"propertyName": "hs_task_subject", "operator": "EQ", "value": subject}]}
        ],
        sorts=[],
        properties=["hs_task_subject"],
        limit=1,
    )
    if found.get("results"):
        return str(found["results"][0]["id"])
    due = datetime.combine(task.due, time(), tzinfo=UTC)
    properties = {
        "hs_task_subject": subject,
        "hs_task_body": task.body,
        "hs_timestamp": due.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "hs_task_status": "NOT_STARTED",
        "hs_task_priority": PRIORITY.get(task.priority, "NONE"),
    }
    if task.owner_id:
        properties["hubspot_owner_id"] = task.owner_id
    return client.create_task(properties, task.deal_id)
