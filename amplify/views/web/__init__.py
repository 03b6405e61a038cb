"""The web pages: labelling a run together (`--oracle=web`) and a browser of runs (`amplify-web
serve`). `access` holds who may sign in, `app` the pages, `server` the command line and the
server thread. Starlette and uvicorn, loaded only here (`pip install amplify[web]`)."""
