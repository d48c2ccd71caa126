from mlops_kit.app import serve

from feature_store.app import MIGRATIONS, create_app
from feature_store.settings import FeatureStoreSettings


def main() -> None:
    settings = FeatureStoreSettings()
    serve(lambda: create_app(settings), settings, migrations=MIGRATIONS)


if __name__ == "__main__":
    main()
