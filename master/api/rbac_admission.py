"""Who may write RBAC's objects, beyond the verb itself (Kubernetes' escalation prevention).

- A Role or ClusterRole may grant only what its writer holds, where it will hold: a Role's rules
  must be covered by the writer's rules in its namespace, a ClusterRole's by the writer's rules
  cluster-wide, unless the writer may `escalate` that role.
- A RoleBinding or ClusterRoleBinding may bind only a role whose rules the writer holds (in the
  binding's namespace, or cluster-wide), unless the writer may `bind` that role; a role that does
  not exist yet needs `bind` (else whoever wrote it later would widen the binding).
- A binding's roleRef never changes (422): a new role is a new binding, as in Kubernetes.
- Subjects are users and groups; ServiceAccount is refused by name (422), Berth has none yet.
- The built-ins (master/rbac/builtin.py) are the code's: no write reaches them (403).
"""

from __future__ import annotations

from berth.objects import Obj
from master.api.auth import Principal, current_book, decide
from master.errors import ApiError
from master.rbac.builtin import is_builtin
from master.rbac.rules import MAX_ATOMS, Rule, TooWide, covers

ROLE_KINDS = ("Role", "ClusterRole")
BINDING_KINDS = ("RoleBinding", "ClusterRoleBinding")


def check_not_builtin(kind: str, name: str) -> None:
    if is_builtin(kind, name):
        raise ApiError(403, "Forbidden", f"{kind} {name} is built in (master/rbac/builtin.py): it is the "
                       "masters' code, and no write changes it", "metadata.name")


def admit_rbac(obj: Obj, principal: Principal, current: Obj | None) -> None:
    """Raise unless `principal` may write `obj` (over `current`, the stored one, if any)."""
    kind, meta = obj["kind"], obj["metadata"]
    check_not_builtin(kind, meta["name"])
    namespace = meta.get("namespace") if kind in ("Role", "RoleBinding") else None
    if kind in ROLE_KINDS:
        _check_role(obj, principal, namespace)
    elif kind in BINDING_KINDS:
        _check_subjects(obj)
        if current is not None and current.get("roleRef") != obj["roleRef"]:
            raise ApiError(422, "FieldValueInvalid", "roleRef cannot be changed: delete the binding and "
                           "make a new one", "roleRef")
        _check_binding(obj, principal, namespace)


def _holds(principal: Principal, namespace: str | None) -> list[Rule]:
    return current_book().rules_for(principal.name, principal.all_groups, namespace)


def _may(principal: Principal, verb: str, kind: str, name: str, namespace: str | None) -> bool:
    return decide(principal, verb, kind, name, namespace=namespace or "").allowed


def _check_role(role: Obj, principal: Principal, namespace: str | None) -> None:
    name = role["metadata"]["name"]
    if _may(principal, "escalate", role["kind"], name, namespace):
        return
    held, budget = _holds(principal, namespace), [MAX_ATOMS]
    for index, rule in enumerate(role.get("rules") or ()):
        if not _covered(held, Rule.of(rule), budget, f"rules[{index}]"):
            where = f"in namespace {namespace}" if namespace else "cluster-wide"
            raise ApiError(403, "Forbidden", f"{principal.describe()} may not grant rules[{index}] "
                           f"({_text(Rule.of(rule))}): it does not hold it {where}, and may not escalate "
                           f"{role['kind']} {name}", f"rules[{index}]")


def _check_subjects(binding: Obj) -> None:
    for index, subject in enumerate(binding.get("subjects") or ()):
        if subject["kind"] == "ServiceAccount":
            raise ApiError(422, "FieldValueNotSupported", f"subjects[{index}].kind: ServiceAccount is not "
                           "implemented: Berth's subjects are the tokens file's users (User) and groups "
                           "(Group)",
                           f"subjects[{index}].kind")
        if subject.get("namespace"):
            raise ApiError(422, "FieldValueInvalid", f"subjects[{index}].namespace: a {subject['kind']} has "
                           "no namespace", f"subjects[{index}].namespace")


def _check_binding(binding: Obj, principal: Principal, namespace: str | None) -> None:
    ref = binding["roleRef"]
    if _may(principal, "bind", ref["kind"], ref["name"], namespace):
        return
    book = current_book()
    rules = book.role_rules(ref["kind"], namespace or "", ref["name"])
    what = f"{ref['kind']} {ref['name']}"
    if rules is None:
        raise ApiError(403, "Forbidden", f"{principal.describe()} may not bind {what}: it does not exist, "
                       f"and binding a role before it exists needs the bind verb on it", "roleRef.name")
    held, budget = _holds(principal, namespace), [MAX_ATOMS]
    for rule in rules:
        if not _covered(held, rule, budget, "roleRef.name"):
            where = f"in namespace {namespace}" if namespace else "cluster-wide"
            raise ApiError(403, "Forbidden", f"{principal.describe()} may not bind {what}: it grants "
                           f"{_text(rule)}, which it does not hold {where}, and it may not bind {what}",
                           "roleRef.name")


def _covered(held: list[Rule], rule: Rule, budget: list[int], field: str) -> bool:
    try:
        return covers(held, rule, budget)
    except TooWide as err:
        raise ApiError(422, "FieldValueInvalid", f"{field}: too wide to check against the writer's own rules "
                       f"({err}; at most {MAX_ATOMS} in all unless one of its rules covers each whole): "
                       "split it, or have it written by whoever may escalate or bind it", field) from None


def _text(rule: Rule) -> str:
    names = f" named {', '.join(rule.resource_names)}" if rule.resource_names else ""
    return f"{', '.join(rule.verbs)} on {', '.join(rule.resources)}{names}"
