"""What the API does to a Service or Endpoints write before the store: the parts that read the store.

A Service gets its address and node ports here (master/objects/services.py decides, from a copy
of the store's index of what Services hold, taken under its lock and read after). Endpoints are
the endpoints controller's for every Service with a selector: through the API only admins write
any (auth.ADMIN_WRITTEN), and only those of a Service without one, as Kubernetes leaves those to
their users; the controller deletes Endpoints whose Service is gone, so none may be written
without one.
"""

from __future__ import annotations

from berth.objects import Obj
from master.api.context import ApiContext
from master.errors import ApiError
from master.objects.services import (
    Picks,
    Ranges,
    allocated,
    check_service_spec,
    dropped_by_type,
    kept_allocations,
)


def admitted_service(obj: Obj, ctx: ApiContext, picks: Picks) -> Obj:
    """The Service as the store is asked to keep it, or the 422 naming the field at fault."""
    meta = obj["metadata"]
    stored = ctx.store.get("Service", meta["namespace"], meta["name"])
    obj = dropped_by_type(stored, obj)
    check_service_spec(obj["spec"])
    if stored is not None:
        obj = kept_allocations(stored, obj)
    try:
        return _allocated(obj, ctx, picks)
    except ApiError as err:
        if err.status != 422:
            raise
        # what was asked for looked held, or the range full, on this master's copy, which may lag
        # a release the client made through another master: decided again on a current copy
        ctx.store.barrier()
        return _allocated(obj, ctx, picks)


def _allocated(obj: Obj, ctx: ApiContext, picks: Picks) -> Obj:
    holders, _ = ctx.store.read(lambda state: state.indexes.held())
    return allocated(obj, lambda index, value: holders.get(index, {}).get(value),
                     Ranges(ctx.service_cidr, ctx.service_node_port_range), picks)


def check_endpoints_written(obj: Obj, ctx: ApiContext) -> None:
    """Only the Endpoints of an existing Service without a selector: others are the controller's."""
    meta = obj["metadata"]
    where = f"{meta['namespace']}/{meta['name']}"
    service = ctx.store.get("Service", meta["namespace"], meta["name"])
    if service is None:  # this master's copy may lag a Service the client just made through another
        ctx.store.barrier()
        service = ctx.store.get("Service", meta["namespace"], meta["name"])
    if service is None:
        raise ApiError(422, "Invalid", f"Endpoints {where}: no Service of that name; Endpoints belong to the "
                       "Service they are named after (the endpoints controller deletes any other)",
                       "metadata.name")
    if (service.get("spec") or {}).get("selector"):
        raise ApiError(422, "Invalid", f"Endpoints {where}: Service {meta['name']} has a selector, so its "
                       "Endpoints are written by the endpoints controller from the pods it selects; "
                       "write Endpoints only for a Service without one", "metadata.name")
