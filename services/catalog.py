"""Where each service's nameko class lives; used by deploy, topology and tooling."""

from __future__ import annotations

import importlib
from typing import Any

SERVICES: dict[str, str] = {
    "identity": "services.identity.service:IdentityService",
    "roster": "services.roster.service:RosterService",
    "housing": "services.housing.service:HousingService",
    "aid": "services.aid.service:AidService",
    "transfer": "services.transfer.service:TransferService",
}


def service_class(name: str) -> Any:
    module, _, attr = SERVICES[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def all_service_classes() -> list[Any]:
    return [service_class(name) for name in SERVICES]
