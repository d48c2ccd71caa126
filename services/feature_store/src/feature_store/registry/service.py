"""Registry rules, one module per responsibility: entities, feature sets with versioned schemas,
feature services. This module keeps the one import path the router and other packages use."""

from __future__ import annotations

from feature_store.registry.entities import (
    DEFAULT_ENTITY,
    DEFAULT_JOIN_KEY,
    create_entity,
    default_entity,
    delete_entity,
    entity_read,
    get_entity,
    list_entities,
    update_entity,
)
from feature_store.registry.feature_services import (
    create_service,
    delete_service,
    get_service,
    list_services,
    service_read,
    service_versions,
)
from feature_store.registry.feature_sets import (
    add_version,
    apply_feature_set,
    create_feature_set,
    delete_feature_set,
    feature_set_read,
    feature_set_reads,
    get_feature_set,
    get_version,
    list_feature_sets,
    schema_diff,
    update_feature_set,
)

__all__ = [
    "DEFAULT_ENTITY",
    "DEFAULT_JOIN_KEY",
    "add_version",
    "apply_feature_set",
    "create_entity",
    "create_feature_set",
    "create_service",
    "default_entity",
    "delete_entity",
    "delete_feature_set",
    "delete_service",
    "entity_read",
    "feature_set_read",
    "feature_set_reads",
    "get_entity",
    "get_feature_set",
    "get_service",
    "get_version",
    "list_entities",
    "list_feature_sets",
    "list_services",
    "schema_diff",
    "service_read",
    "service_versions",
    "update_entity",
    "update_feature_set",
]
