"""API docs served by the service itself: `/openapi.json`, Swagger UI at `/docs`, ReDoc at `/redoc`.

The Swagger UI and ReDoc bundles come from the `fastapi-offline` package and are served under
`/docs/assets/`, so the pages work on a network without internet access (no CDN, no web fonts).
Who may read them is a setting (`MLOPS_DOCS_PUBLIC`, see SETTINGS.md beside this package)."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

from mlops_kit.deps import authenticate
from mlops_kit.errors import JsonResponse, NotFound

ASSET_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
ASSET_PATH = "/docs/assets"
DOCS_PATHS = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")


async def docs_access(request: Request) -> None:
    """Open when the docs are public (or auth is off); otherwise any valid key, whatever its role."""
    if not request.app.state.settings.docs_public:
        await authenticate(request)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def docs_router() -> APIRouter:
    router = APIRouter(include_in_schema=False, dependencies=[Depends(docs_access)])

    @router.get("/openapi.json")
    async def openapi(request: Request) -> JsonResponse:
        return JsonResponse(request.app.openapi())

    @router.get("/docs")
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{request.app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSET_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSET_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSET_PATH}/favicon.png",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
            # no badge fetched from the public validator
            swagger_ui_parameters={"validatorUrl": None},
        )

    @router.get("/docs/oauth2-redirect")
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{request.app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSET_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSET_PATH}/favicon.png",
            with_google_fonts=False,
        )

    @router.get(ASSET_PATH + "/{name}")
    async def asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise NotFound(f"no docs asset {name!r}", {"assets": sorted(ASSETS)})
        # the bundles only change with the package version: let browsers keep them for a day
        headers = {"Cache-Control": "max-age=86400"}
        return FileResponse(ASSET_DIR / name, media_type=ASSETS[name], headers=headers)

    return router
