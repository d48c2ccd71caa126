from mlops_kit.app import serve

from model_serving.app import MIGRATIONS, create_app
from model_serving.settings import ServingSettings


def main() -> None:
    settings = ServingSettings()
    serve(
        lambda: create_app(settings),
        settings,
        factory_path="model_serving.app:create_app",
        migrations=MIGRATIONS,
    )


if __name__ == "__main__":
    main()
