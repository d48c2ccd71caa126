from mlops_kit.app import serve

from ab_testing.app import MIGRATIONS, create_app
from ab_testing.settings import AbTestingSettings


def main() -> None:
    settings = AbTestingSettings()
    serve(lambda: create_app(settings), settings, migrations=MIGRATIONS)


if __name__ == "__main__":
    main()
