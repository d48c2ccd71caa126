from mlops_kit.app import serve

from model_registry.app import MIGRATIONS, create_app
from model_registry.settings import RegistrySettings


def main() -> None:
    settings = RegistrySettings()
    serve(
        lambda: create_app(settings),
        settings,
        factory_path="model_registry.app:create_app",
        migrations=MIGRATIONS,
    )


if __name__ == "__main__":
    main()
