from mlops_kit.app import serve

from pipeline_orchestrator.app import MIGRATIONS, create_app
from pipeline_orchestrator.settings import OrchestratorSettings


def main() -> None:
    settings = OrchestratorSettings()
    serve(lambda: create_app(settings), settings, migrations=MIGRATIONS)


if __name__ == "__main__":
    main()
