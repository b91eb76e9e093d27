"""ServiceAccounts: identities for pods. Nothing beyond object metadata to default or check."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.objects import Object
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import as_dict, as_list
from timonel.kinds.printing import creation_age, field_description


class ServiceAccountStrategy(Strategy):
    kind = "ServiceAccount"
    plural = "serviceaccounts"
    singular = "serviceaccount"
    short_names = ("sa",)
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column("Secrets", description=field_description("", "v1", "ServiceAccount", "secrets")),
        AGE_COLUMN,
    )

    def table_row(self, obj: Object) -> list[Any]:
        meta = as_dict(obj.get("metadata"))
        return [meta.get("name", ""), len(as_list(obj.get("secrets"))), creation_age(obj)]
