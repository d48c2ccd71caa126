from typing import ClassVar

from mlops_kit.settings import ServiceSettings


class TrackingSettings(ServiceSettings):
    service_name: ClassVar[str] = "experiment_tracking"
    default_port: ClassVar[int] = 8003
