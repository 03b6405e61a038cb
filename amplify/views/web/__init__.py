"""The web pages: labelling a run together (`--oracle=web`) and a browser of runs (`amplify-web
serve`). `access` holds who may sign in, `app` the pages, `server` the server thread, `cli` the
command line. Starlette, uvicorn and Jinja2 are imported only here, when the pages are served."""
