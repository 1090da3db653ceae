"""The runtime fabric: runs as durable work items on DBOS, approvals, events, queues."""
