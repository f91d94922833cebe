"""The RBAC the fake enforces: the rules bound to the service account in deploy/components/enact/rbac.yaml.

That file is the RBAC the enact overlay installs (tests/deploy/test_manifests.py checks that what
`kubectl kustomize deploy/overlays/enact` renders grants exactly these rules). Only ClusterRoles bound by
ClusterRoleBindings to the account are read; that is how the deployment grants them, and it keeps the
fake's authoriser a few lines. A subject without a namespace is in the overlays' namespace, as kustomize
renders it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

RBAC_FILE = Path(__file__).resolve().parents[2] / "deploy" / "components" / "enact" / "rbac.yaml"
NAMESPACE = "icos"  # the namespace of deploy/overlays/*/kustomization.yaml
SERVICE_ACCOUNT = (NAMESPACE, "icos-intelligence")


@dataclass(frozen=True, slots=True)
class Rule:
    groups: frozenset[str]
    resources: frozenset[str]
    verbs: frozenset[str]

    def allows(self, verb: str, group: str, resource: str) -> bool:
        return (
            (group in self.groups or "*" in self.groups)
            and (resource in self.resources or "*" in self.resources)
            and (verb in self.verbs or "*" in self.verbs)
        )


@dataclass(frozen=True, slots=True)
class Authorizer:
    user: str
    rules: tuple[Rule, ...]

    @classmethod
    def load(cls, path: Path = RBAC_FILE, account: tuple[str, str] = SERVICE_ACCOUNT) -> Authorizer:
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        roles = {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == "ClusterRole"}
        bound: list[str] = []
        for doc in documents:
            if doc["kind"] != "ClusterRoleBinding":
                continue
            subjects = {
                (s.get("namespace", NAMESPACE), s["name"]) for s in doc["subjects"] if s["kind"] == "ServiceAccount"
            }
            if account in subjects:
                bound.append(doc["roleRef"]["name"])
        rules = tuple(
            Rule(frozenset(rule["apiGroups"]), frozenset(rule["resources"]), frozenset(rule["verbs"]))
            for name in bound
            for rule in roles[name].get("rules", [])
        )
        return cls(f"system:serviceaccount:{account[0]}:{account[1]}", rules)

    def allows(self, verb: str, group: str, resource: str) -> bool:
        """``resource`` is ``plural`` or ``plural/subresource``, as RBAC rules spell it."""
        return any(rule.allows(verb, group, resource) for rule in self.rules)

    def denial(self, verb: str, group: str, resource: str, namespace: str | None) -> str:
        """The authoriser's half of the real 403 message."""
        where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        return f'User "{self.user}" cannot {verb} resource "{resource}" in API group "{group}" {where}'
