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
* ``tenancy``: allocation changes, fair-share weight and quota changes.
"""
