"""The generators this deployment serves."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.auth import authenticate
from api.deps import CatalogDep
from api.schemas import ModelList, ModelPublic

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[Depends(authenticate)])


@router.get("", response_model=ModelList)
def list_models(catalog: CatalogDep) -> ModelList:
    """Models per kind, with their aliases, parameter schemas and defaults."""
    return ModelList(
        data=[
            ModelPublic(
                name=spec.name,
                kind=spec.kind,
                default=catalog.defaults[spec.kind] == spec.name,
                aliases=catalog.aliases_of(spec.name),
                description=spec.description,
                params_schema=spec.params_schema(),
            )
            for spec in catalog
        ]
    )
