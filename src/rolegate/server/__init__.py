"""The HTTP side: ASGI request and response, the front door that authenticates and authorizes
every route, and the uvicorn protocol with its bounds."""
