"""Meta-kernel adapters: the only code that talks to Kubernetes (``kubernetes``, the official client).

``base`` defines what the actuator needs (no kubernetes import); ``kube`` builds the
clients and maps API errors; ``knative``, ``ocm`` and ``deployments`` act on one kind
of object each; ``metakernel`` puts them behind :class:`base.MetaKernel`.
"""
