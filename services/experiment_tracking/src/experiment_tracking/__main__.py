from mlops_kit.app import serve

from experiment_tracking.app import MIGRATIONS, create_app
from experiment_tracking.settings import TrackingSettings


def main() -> None:
    settings = TrackingSettings()
    serve(lambda: create_app(settings), settings, migrations=MIGRATIONS)


if __name__ == "__main__":
    main()
