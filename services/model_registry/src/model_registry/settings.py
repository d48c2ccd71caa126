from typing import ClassVar

from mlops_kit.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    service_name: ClassVar[str] = "model_registry"
    default_port: ClassVar[int] = 8000
