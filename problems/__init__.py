"""Example problems written as a user writes them, for ``--problem problems.NAME:function``.

The shipped problems live in :mod:`masksearch.catalogue` (``masksearch problems`` lists them);
this directory shows the other way in: a module with a function that returns a
:class:`masksearch.PruningProblem`, run from the repository root with
``masksearch run --problem problems.tiny_mlp:make_problem``.
"""
