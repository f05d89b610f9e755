"""The application layer: the hub's workflows, called by the API (and later a dashboard).

Each workflow is a plain function taking typed inputs (the ``Hub``, the ``Principal`` who acts,
the request's fields), the store and the loop handle; it returns a result or raises a typed
domain error (``steppe.app.errors``) that the API maps to its problem responses. HTTP (parsing,
authentication headers, status codes) stays in ``steppe.api``.

* ``bootstrap``: start-up wiring (data directory, store, executor by name, power, governance,
  loop, read model) shared by ``steppe serve`` and the tests' in-process hubs;
* ``hub``: the wired hub and the caches of the submission path;
* ``auth``: who calls (``Principal``) and the token check;
* ``submission``: the checks on a job submission (the submission gate, paths, environment);
* ``jobs``: submit, cancel, a job's reason detail;
* ``review``: proposals and their review actions, the expiry sweep;
* ``tenancy``: organisations and projects, fair-share weight and quota changes;
* ``allocations``: allocation changes, allocations and usage as a caller may see them;
* ``members``: add, list and remove (disable) an organisation's users;
* ``tokens``: issue, list and revoke API tokens (who may manage whose);
* ``datasets``: register datasets, list them with their residency decision at the hub's site;
* ``terms``: publish the acceptable-use terms, read and accept the version in force;
* ``audit``: read, verify and export the audit log (hub-admins and reviewers).
"""
