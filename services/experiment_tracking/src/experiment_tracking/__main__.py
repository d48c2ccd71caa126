from mlops_kit.app import serve

from experiment_tracking.app import create_app
from experiment_tracking.settings import TrackingSettings


def main() -> None:
    settings = TrackingSettings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
