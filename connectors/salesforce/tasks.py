"""Tasks for deal owners: one ``Task`` per alert, found again by its key before a re-create.

The alert's delivery key ends the task's ``Subject`` (``... [violation:...:crm_task]``); the
subject is filterable, so one SOQL query on the deal's tasks tells whether an earlier try
already created it (a crash between the create and the outbox's record of it).
"""

from __future__ import annotations

from typing import Any

from connectors.base import CrmTask
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.soql import soql_literal

__all__ = ["create_task", "task_subject"]

SUBJECT_LENGTH = 255


def task_subject(task: CrmTask) -> str:
    """The ``Subject``: the task's subject, shortened to fit, then its key in brackets."""
    tail = f" [{task.key}]"
    return task.subject[: SUBJECT_LENGTH - len(tail)] + tail


def create_task(client: SalesforceClient, task: CrmTask) -> str:
    """The id of the deal's task with ``task.key``: the existing one, else a new one."""
    # "_" in the key is a LIKE wildcard that also matches itself; the key holds no "%"
    key = task.key.replace("%", "")
    soql = (
        "SELECT Id FROM Task"
        f" WHERE WhatId = {soql_literal(task.deal_id)}"
        f" AND Subject LIKE {soql_literal('%[' + key + ']')} LIMIT 1"
    )
    found = client.call("find Task", lambda sf: sf.query(soql))
    if found.get("records"):
        return str(found["records"][0]["Id"])
    body: dict[str, Any] = {
        "WhatId": task.deal_id,
        "Subject": task_subject(task),
        "Description": task.body,
        "ActivityDate": task.due.isoformat(),
        "Status": "Not Started",
        "Priority": task.priority,
    }
    if task.owner_id:
        body["OwnerId"] = task.owner_id
    created = client.call("create Task", lambda sf: sf.Task.create(body))
    return str(created["id"])
